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

export async function placeGroups(): Promise<PlaceGroup[]> {
  return (await json<{ placeGroups: PlaceGroup[] }>(await fetch("places"))).placeGroups;
}

export async function places(group: string): Promise<object> {
  return json<object>(await fetch(`places/${enc(group)}`));
}

export async function observations(group: string, place: string, parameter: string
                                   ): Promise<{ time: string; value: number; unit: string }[]> {
  const response = await fetch(`places/${enc(group)}/${enc(place)}/observations?parameter=${enc(parameter)}`);
  return (await json<{ observations: { time: string; value: number; unit: string }[] }>(response)).observations;
}

export async function placeDashboard(dataset: string, variable: string, group: string, place: string
                                     ): Promise<import("./dashboard").ClassReport> {
  return json(await fetch(`dashboards/${enc(dataset)}/${enc(variable)}/places/${enc(group)}/${enc(place)}`));
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
  csrf_token?: string;
  csrf_header?: string;
}

export async function me(): Promise<Me> {
  return json<Me>(await fetch("auth/me"));
}

export async function signOut(who: Me): Promise<void> {
  const headers: Record<string, string> = {};
  if (who.csrf_header && who.csrf_token) headers[who.csrf_header] = who.csrf_token;
  const response = await fetch("auth/logout", { method: "POST", headers });
  if (!response.ok && response.status !== 204) await json(response);
}
