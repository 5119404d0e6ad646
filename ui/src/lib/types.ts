// The JSON shapes of /api/v1 (docs: specs/ui-api.md).

export type Status = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED' | 'CRASHED';

export interface Session {
  mode: 'local' | 'server';
  user: string;
  can_write: boolean;
  csrf: string;
  version: string;
}

export interface Project {
  name: string;
  runs: number;
  last_start: number | null;
}

export interface Keys {
  params: string[];
  metrics: string[];
  tags: string[];
  /** the runs table's columns until some are picked: the newest runs' headline metrics */
  columns: string[];
}

export type Value = string | number | boolean | null;

export interface RunRow {
  id: string;
  name: string;
  project: string;
  status: Status;
  parent_id: string | null;
  start_time: number | null;
  end_time: number | null;
  children: number;
  tags: Record<string, string>;
  note: string | null;
  deleted: boolean;
  metrics: Record<string, Value>;
  values: Record<string, Value>;
}

export interface RunPage {
  runs: RunRow[];
  total: number;
  offset: number;
  next_page_token: string | null;
}

export interface ModelSpec {
  flavor?: string;
  format?: string;
  framework_version?: string;
  path?: string;
  files?: string[];
  class?: string;
  [key: string]: unknown;
}

export interface Summary {
  last: Value;
  min: Value;
  max: Value;
  step: number;
  count: number;
}

export interface RunDetail extends RunRow {
  params: Record<string, Value>;
  artifacts: string[];
  models: Record<string, ModelSpec>;
  metric_summary: Record<string, Summary>;
}

export interface History {
  run_id: string;
  key: string;
  total: number;
  downsampled: boolean;
  steps: number[];
  values: (number | string | null)[];
  timestamps: number[];
  min?: (number | string | null)[];
  max?: (number | string | null)[];
}

export interface FileEntry {
  path: string;
  size: number;
}

export type MediaKind = 'image' | 'histogram' | 'table' | 'text' | 'plot';

export interface MediaItem {
  kind: MediaKind;
  key: string;
  step: number;
  time: number;
  path: string; // under the run's artifacts: /files/<path>
  image: string | null; // a plot's drawing
  meta: Record<string, unknown>;
}

export interface MediaKey {
  key: string;
  kind: MediaKind;
  count: number;
  first_step: number;
  last_step: number;
  last_time: number;
}
