export default function stringWidth(text: string, options?: { countAnsiEscapeCodes?: boolean; ambiguousIsNarrow?: boolean }): number;
