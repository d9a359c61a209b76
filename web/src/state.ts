// The view's state, kept in the URL's hash so that a link reopens the same view (a permalink).

import type { TileStyle } from "./api";

export interface LayerState {
  dataset: string;
  variable: string;
  opacity: number;
  style: TileStyle;
}

export interface ViewState {
  projection: "EPSG:3857" | "EPSG:3067";
  center: [number, number]; // lon, lat
  zoom: number;
  time: string | null; // ISO; null: the newest step
  layers: LayerState[]; // bottom first
  theme: "light" | "dark";
  basemap: "land" | "osm" | "none";
}

export const initialState: ViewState = {
  projection: "EPSG:3857", center: [20, 59], zoom: 4, time: null, layers: [], theme: "light", basemap: "land",
};

export function readHash(hash: string): ViewState {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const state: ViewState = structuredClone(initialState);
  const projection = params.get("proj");
  if (projection === "EPSG:3067" || projection === "EPSG:3857") state.projection = projection;
  const center = params.get("c")?.split(",").map(Number);
  if (center?.length === 2 && center.every(Number.isFinite)) state.center = [center[0], center[1]];
  const zoom = Number(params.get("z"));
  if (params.has("z") && Number.isFinite(zoom)) state.zoom = zoom;
  state.time = params.get("t");
  if (params.get("theme") === "dark") state.theme = "dark";
  const basemap = params.get("base");
  if (basemap === "osm" || basemap === "none") state.basemap = basemap;
  for (const text of params.getAll("l")) {
    // dataset/variable~opacity~colormap~vmin~vmax~norm (cube ids may hold dots, never slashes)
    const [id, opacity, colormap, vmin, vmax, norm] = text.split("~");
    const slash = id?.lastIndexOf("/") ?? -1;
    if (slash < 1) continue;
    state.layers.push({
      dataset: id.slice(0, slash), variable: id.slice(slash + 1), opacity: clamp(Number(opacity || 1), 0, 1),
      style: { colormap: colormap || "viridis", vmin: Number(vmin), vmax: Number(vmax),
               norm: norm === "log" || norm === "cat" ? norm : "lin" },
    });
  }
  return state;
}

export function writeHash(state: ViewState): string {
  const params = new URLSearchParams();
  params.set("proj", state.projection);
  params.set("c", state.center.map((v) => v.toFixed(4)).join(","));
  params.set("z", state.zoom.toFixed(2));
  if (state.time) params.set("t", state.time);
  if (state.theme !== "light") params.set("theme", state.theme);
  if (state.basemap !== "land") params.set("base", state.basemap);
  for (const layer of state.layers) {
    const s = layer.style;
    params.append("l", [`${layer.dataset}/${layer.variable}`, layer.opacity.toFixed(2), s.colormap, s.vmin, s.vmax,
                        s.norm].join("~"));
  }
  return "#" + params.toString();
}

function clamp(value: number, lo: number, hi: number): number {
  return Number.isFinite(value) ? Math.min(hi, Math.max(lo, value)) : hi;
}
