// The WAN section's vocabulary: workloads, tools, links and settings (shared by wan.ts and wan-report.ts).

/** Uploads first (the acceptance rows), then the same 64 MiB file and tree downloaded. */
export const WORKLOADS = ['file64', 'file256', 'tree', 'tree-again', 'file64-down', 'tree-down'] as const;
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
