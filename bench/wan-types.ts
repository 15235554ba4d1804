// The WAN section's vocabulary: workloads, tools, links and settings (shared by wan.ts and wan-report.ts).

/**
 * Uploads first (the acceptance rows), then a tree of 16 KiB files (web assets: the size that piles up in
 * sftp-server's input), then the same 64 MiB file and 4 KiB tree downloaded.
 */
export const WORKLOADS = ['file64', 'file256', 'tree', 'tree-again', 'tree16k', 'file64-down', 'tree-down'] as const;
export const WAN_TOOLS = ['safe-scp', 'scp', 'rsync'] as const;
export type Workload = (typeof WORKLOADS)[number];
export type WanTool = (typeof WAN_TOOLS)[number];

export interface Link {
  rttMs: number;
  mbit: number;
  /** `10 ms / 200 Mbit/s` */
  label: string;
  /** `10/200`, as in BENCH_LINKS */
  id: string;
}

export interface WanSettings {
  rounds: number;
  links: Link[];
  workloads: Workload[];
  tools: WanTool[];
  runTimeoutMs: number;
}
