// The server's routes the viewer uses, typed. Same origin; the session cookie signs requests in.

export interface Variable {
  id: string;
  name: string;
  title: string;
  units: string;
  dims: string[];
  colorBarName: string;
  colorBarMin: number;
  colorBarMax: number;
  colorBarNorm: "lin" | "log" | "cat";
  tileLevelMax: number;
}

export interface Dimension {
  name: string;
  coordinates: (string | number)[];
}

export interface Dataset {
  id: string;
  title: string;
  description?: string;
  bbox: [number, number, number, number];
  variables: Variable[];
  dimensions: Dimension[];
  themes: string[];
}

export interface SeriesPoint {
  time: string;
  mean: number | null;
  std?: number | null;
  count?: number;
}

export class ApiError extends Error {}

const enc = encodeURIComponent;

async function json<T>(response: Response): Promise<T> {
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body.detail ?? body.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(message);
  }
  return (await response.json()) as T;
}

export async function datasets(): Promise<Dataset[]> {
  const body = await json<{ datasets: Dataset[] }>(await fetch("datasets?details=1"));
  return body.datasets;
}

export async function colormaps(): Promise<string[]> {
  const groups = await json<[string, string, [string, string][]][]>(await fetch("colorbars"));
  return groups.flatMap(([, , maps]) => maps.map(([name]) => name));
}

export async function timeSeries(dataset: string, variable: string, geometry: object,
                                 methods = "mean,std"): Promise<SeriesPoint[]> {
  const response = await fetch(`timeseries/${enc(dataset)}/${enc(variable)}?aggMethods=${methods}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(geometry),
  });
  return (await json<{ result: SeriesPoint[] }>(response)).result;
}

export async function valueAt(dataset: string, variable: string, lon: number, lat: number,
                              time: string): Promise<number | null> {
  const query = new URLSearchParams({ lon: String(lon), lat: String(lat), time });
  const response = await fetch(`statistics/${enc(dataset)}/${enc(variable)}?${query}`);
  if (response.status === 404) return null; // outside the cube
  return (await json<{ result: { value: number | null } }>(response)).result.value;
}

export interface TileStyle {
  colormap: string;
  vmin: number;
  vmax: number;
  norm: "lin" | "log" | "cat";
}

export function tileUrl(dataset: string, variable: string, time: string, style: TileStyle): string {
  const query = new URLSearchParams({
    time, cmap: style.colormap, vmin: String(style.vmin), vmax: String(style.vmax), norm: style.norm,
  });
  return `tiles/${enc(dataset)}/${enc(variable)}/{z}/{y}/{x}?${query}`;
}

export function legendUrl(dataset: string, variable: string, style: TileStyle): string {
  const query = new URLSearchParams({ cmap: style.colormap, norm: style.norm, width: "256", height: "12" });
  return `tiles/${enc(dataset)}/${enc(variable)}/legend?${query}`;
}

export interface PlaceGroup {
  id: string;
  title: string;
}

/** Place groups of the feature store have ids `features:{database}.{collection}`; the others are the server's
 * place files. Both are GeoJSON overlays whose stations may have in-situ observations. */
const FEATURES = "features:";
const FEATURE_PAGE = 5000;

function featureCollection(group: string): string | null {
  return group.startsWith(FEATURES) ? `features/collections/${enc(group.slice(FEATURES.length))}` : null;
}

export async function placeGroups(): Promise<PlaceGroup[]> {
  const [files, store] = await Promise.all([
    fetch("places").then((r) => json<{ placeGroups: PlaceGroup[] }>(r)).then((r) => r.placeGroups).catch(() => []),
    fetch("features/collections").then((r) => json<{ collections: { id: string; title: string }[] }>(r))
      .then((r) => r.collections).catch(() => []),
  ]);
  return [...files, ...store.map((c) => ({ id: FEATURES + c.id, title: c.title }))];
}

/** A group's features as GeoJSON: a place file whole; a feature collection's first FEATURE_PAGE features,
 * of those within `bbox` (west, south, east, north in degrees) when it is given. */
export async function places(group: string, bbox?: number[]): Promise<{ features: object[]; numberMatched?: number }> {
  const collection = featureCollection(group);
  if (!collection) return json(await fetch(`places/${enc(group)}`));
  const within = bbox ? `&bbox=${bbox.map((v) => v.toFixed(5)).join(",")}` : "";
  return json(await fetch(`${collection}/items?limit=${FEATURE_PAGE}${within}`));
}

export interface Observation {
  time: string;
  value: number;
  unit: string;
}

export async function observations(group: string, place: string, parameter: string): Promise<Observation[]> {
  const collection = featureCollection(group);
  if (collection) {
    const response = await fetch(`${collection}/items/${enc(place)}/observations?parameter=${enc(parameter)}`);
    const series = await json<{ unit: string; observations: { time: string; value: number }[] }>(response);
    return series.observations.map((o) => ({ ...o, unit: series.unit }));
  }
  const response = await fetch(`places/${enc(group)}/${enc(place)}/observations?parameter=${enc(parameter)}`);
  return (await json<{ observations: Observation[] }>(response)).observations;
}

/** The dashboard of a place: the server's place route, or for a feature the polygon route with the limits in
 * the feature's `{variable}_class_limits` property. */
export async function placeDashboard(dataset: string, variable: string, group: string, place: string,
                                     geometry: object, properties: Record<string, unknown>
                                     ): Promise<import("./dashboard").ClassReport> {
  if (!featureCollection(group)) {
    return json(await fetch(`dashboards/${enc(dataset)}/${enc(variable)}/places/${enc(group)}/${enc(place)}`));
  }
  const limits = properties[`${variable}_class_limits`];
  if (limits == null) throw new ApiError(`this feature has no ${variable}_class_limits property`);
  const text = Array.isArray(limits) ? limits.join(",") : String(limits);
  return json(await fetch(`dashboards/${enc(dataset)}/${enc(variable)}?limits=${enc(text)}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(geometry),
  }));
}

export async function areaStatistics(dataset: string, variable: string, geometry: object, time: string
                                     ): Promise<{ count: number; minimum?: number; maximum?: number; mean?: number;
                                                  deviation?: number;
                                                  histogram?: { values: number[]; edges: number[] } }> {
  const response = await fetch(`statistics/${enc(dataset)}/${enc(variable)}?time=${enc(time)}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(geometry),
  });
  return (await json<{ result: { count: number } }>(response)).result;
}

export interface Me {
  name: string | null;
  signed_in: boolean;
  role?: string; // viewer, editor or admin
  groups?: string[];
  csrf_token?: string;
  csrf_header?: string;
}

export async function me(): Promise<Me> {
  return json<Me>(await fetch("auth/me"));
}

/** The headers of a write with the session cookie: the CSRF token that /auth/me gave. */
function csrf(who: Me): Record<string, string> {
  return who.csrf_header && who.csrf_token ? { [who.csrf_header]: who.csrf_token } : {};
}

export async function signOut(who: Me): Promise<void> {
  const response = await fetch("auth/logout", { method: "POST", headers: csrf(who) });
  if (!response.ok && response.status !== 204) await json(response);
}

/** A processing job's status (OGC API - Processes statusInfo with Cubeport's steps); times are RFC 3339. */
export type JobStatus = "accepted" | "running" | "successful" | "failed" | "dismissed";

export interface JobStep {
  name: string; // scheduling, fetching, processing, ingesting
  status: "waiting" | "running" | "successful" | "failed";
  progress: number;
  message: string | null;
}

export interface Job {
  jobID: string;
  processID: string;
  status: JobStatus;
  message: string | null;
  created: string;
  started: string | null;
  finished: string | null;
  progress: number; // 0..100
  steps: JobStep[];
}

/** An output by reference: a cube (`cube`), a feature collection (`collection`, `href` its items) or a file. */
export interface JobOutput {
  href: string;
  title?: string;
  cube?: string;
  collection?: string;
}

/** The caller's jobs, newest first; null when nobody is signed in. */
export async function jobs(): Promise<Job[] | null> {
  const response = await fetch("jobs", { cache: "no-store" });
  if (response.status === 401) return null;
  return (await json<{ jobs: Job[] }>(response)).jobs;
}

/** One job with its steps (the list leaves them out). */
export async function job(id: string): Promise<Job> {
  return json(await fetch(`jobs/${enc(id)}`, { cache: "no-store" }));
}

export async function jobLog(id: string): Promise<string> {
  const response = await fetch(`jobs/${enc(id)}/logs`, { cache: "no-store" });
  if (!response.ok) await json(response);
  return response.text();
}

/** A successful job's outputs by name: a reference (JobOutput) or a JSON value. */
export async function jobResults(id: string): Promise<Record<string, JobOutput | unknown>> {
  return json(await fetch(`jobs/${enc(id)}/results`));
}

export async function dismissJob(id: string, who: Me): Promise<Job> {
  return json(await fetch(`jobs/${enc(id)}`, { method: "DELETE", headers: csrf(who) }));
}

// -- operations (admins and the `operators` group): GET /ops/status, actions on nodes, task output ------------

/** ecFlow's node states; `suspended` is a separate flag of a node. */
export type NodeState = "unknown" | "queued" | "submitted" | "active" | "complete" | "aborted";
export type OpsAction = "requeue" | "rerun" | "run" | "suspend" | "resume" | "kill" | "complete";

/** A node of a run: a family has its children's most significant state; times are RFC 3339. */
export interface OpsNode {
  path: string;
  kind: "family" | "task";
  state: NodeState;
  suspended: boolean;
  try: number;
  tries: number;
  started: string | null;
  ended: string | null;
  seconds: number | null;
  reason: string;
  children: OpsNode[];
}

export interface OpsRun {
  id: string;
  cause: string;
  variables: Record<string, string>;
  created: string;
  finished: string | null;
  tree: OpsNode;
}

export interface OpsSuite {
  name: string;
  title: string;
  schedule: { every: number | null; cron: string | null };
  runs: OpsRun[]; // newest first
}

export interface OpsWatcher {
  name: string;
  url: string;
  suite: string;
  include: string;
  interval_seconds: number;
  paused: string | null;
  last_look: string | null;
  next_look: string | null;
  last_file: string | null;
  last_error: string | null;
  files: number;
}

/** One try of a task (the timeline's bars). */
export interface OpsTry {
  suite: string;
  run: string;
  path: string;
  state: NodeState;
  try: number;
  started: string;
  ended: string | null;
}

export interface OpsTarget {
  name: string;
  url: string;
  products: string[];
}

export interface OpsDelivery {
  id: number;
  target: string;
  product: string;
  size: number;
  state: "pending" | "delivered" | "failed";
  attempts: number;
  error: string | null;
  created: string;
  delivered: string | null;
  next_try: string | null;
}

export interface OpsStatus {
  time: string;
  runner: { active: boolean; holder: string | null };
  watchers: OpsWatcher[];
  suites: OpsSuite[];
  timeline: OpsTry[];
  targets: OpsTarget[];
  deliveries: OpsDelivery[];
}

/** The server said no (401 or 403): the caller is not an operator, or no longer signed in. */
export class Refused extends ApiError {}

/** The operations status; Refused (with the server's reason) for a caller who is not an operator. */
export async function opsStatus(): Promise<OpsStatus> {
  const response = await fetch("ops/status", { cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    const reason = await json(response).catch((error: Error) => error.message);
    throw new Refused(String(reason));
  }
  return json(response);
}

/** An operator's action on a node of a run; the run's tree after it. */
export async function opsAct(run: string, path: string, action: OpsAction, who: Me): Promise<OpsNode> {
  return json(await fetch(`ops/runs/${enc(run)}/actions`, {
    method: "POST", headers: { "Content-Type": "application/json", ...csrf(who) },
    body: JSON.stringify({ path, action }),
  }));
}

/** A task's output of one try (its last when `tryNo` is not given). */
export async function opsOutput(run: string, path: string, tryNo?: number): Promise<string> {
  const query = new URLSearchParams({ path, ...(tryNo ? { try: String(tryNo) } : {}) });
  const response = await fetch(`ops/runs/${enc(run)}/output?${query}`, { cache: "no-store" });
  if (!response.ok) await json(response);
  return response.text();
}
