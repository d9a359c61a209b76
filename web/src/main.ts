// Cubeport viewer: the catalogue by theme, layers with opacity, order and style, a time slider, the value under
// the cursor, time series at a clicked point, permalinks.

import "ol/ol.css";
import "./style.css";

import * as api from "./api";
import { SeriesChart, download } from "./chart";
import { Dashboard, Histogram } from "./dashboard";
import { JobsPanel } from "./jobs";
import { DataMap } from "./map";
import { OperationsPanel, mayOperate } from "./operations";
import { readHash, writeHash, type LayerState, type ViewState } from "./state";
import GeoJSON from "ol/format/GeoJSON";
import type Feature from "ol/Feature";
import { TimeControl } from "./time";

const state: ViewState = readHash(location.hash);
const datasets = new Map<string, api.Dataset>();
let colormaps: string[] = ["viridis"];

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

document.documentElement.dataset.theme = state.theme;
const dataMap = new DataMap($("map"), state);
const time = new TimeControl($("time-bar"), (t) => {
  state.time = t;
  refresh();
});
const chart = new SeriesChart($<HTMLCanvasElement>("chart"));
const dashboard = new Dashboard($("dashboard"));
const areaHistogram = new Histogram($<HTMLCanvasElement>("area-histogram"));
const jobs = new JobsPanel($("jobs"), { openCube, status });
const operations = new OperationsPanel($("operations"), { status });

function status(message: string, error = false): void {
  const bar = $("status");
  bar.textContent = message;
  bar.classList.toggle("error", error);
}

/** Redraw everything that depends on the state and write the permalink. */
function refresh(): void {
  dataMap.show(state.layers, time.time ?? "", datasets); // with no layer left (and so no time) it clears the map
  renderLayers();
  history.replaceState(null, "", writeHash(state));
}

function stepsOf(layers: LayerState[]): string[] {
  const steps = new Set<string>();
  for (const layer of layers) {
    const dims = datasets.get(layer.dataset)?.dimensions ?? [];
    for (const t of dims.find((d) => d.name === "time")?.coordinates ?? []) steps.add(String(t));
  }
  return [...steps].sort();
}

function updateTimes(): void {
  time.setTimes(stepsOf(state.layers), state.time);
  state.time = time.time;
}

function toggleLayer(dataset: api.Dataset, variable: api.Variable, on: boolean): void {
  state.layers = state.layers.filter((l) => !(l.dataset === dataset.id && l.variable === variable.name));
  if (on) {
    state.layers.push({
      dataset: dataset.id, variable: variable.name, opacity: 1,
      style: { colormap: variable.colorBarName, vmin: variable.colorBarMin, vmax: variable.colorBarMax,
               norm: variable.colorBarNorm },
    });
    dataMap.reveal(dataset);
  }
  for (const box of document.querySelectorAll<HTMLInputElement>(`input[data-layer="${CSS.escape(`${dataset.id}.${variable.name}`)}"]`)) {
    box.checked = on; // the same layer listed under another theme
  }
  updateTimes();
  refresh();
}

/** Themes, each with its categories: a cube's theme "MSP/Shipping" puts it in category Shipping of theme MSP. */
function renderCatalogue(): void {
  const root = $("catalogue");
  root.replaceChildren();
  const tree = new Map<string, Map<string, api.Dataset[]>>();
  for (const dataset of datasets.values()) {
    for (const path of dataset.themes.length ? dataset.themes : ["Other"]) {
      const [theme, category = ""] = path.split("/", 2).map((part) => part.trim());
      const categories = tree.get(theme) ?? new Map<string, api.Dataset[]>();
      categories.set(category, [...(categories.get(category) ?? []), dataset]);
      tree.set(theme, categories);
    }
  }
  const byName = <T,>(entries: Iterable<[string, T]>) => [...entries].sort(([a], [b]) => a.localeCompare(b));
  for (const [theme, categories] of byName(tree)) {
    const group = el("details", { className: "theme", open: true });
    group.append(el("summary", { textContent: theme }));
    for (const [category, members] of byName(categories)) {
      let parent: HTMLElement = group;
      if (category) {
        parent = el("details", { className: "category", open: true });
        parent.append(el("summary", { textContent: category }));
        group.append(parent);
      }
      for (const dataset of members) parent.append(datasetEntry(dataset, `${theme}-${category}`));
    }
    root.append(group);
  }
}

/** A cube a job made: the dataset list read again (the cube is new), then its first variable switched on as the
 * catalogue's checkbox does, on top of the other layers. */
async function openCube(id: string): Promise<void> {
  const found = await api.datasets();
  datasets.clear();
  for (const dataset of found) datasets.set(dataset.id, dataset);
  renderCatalogue();
  const dataset = datasets.get(id);
  const variable = dataset?.variables[0];
  if (!dataset || !variable) throw new api.ApiError(`cube ${id} is not in the catalogue (yet)`);
  toggleLayer(dataset, variable, true);
  status(`${dataset.title || id} on the map`);
}

function datasetEntry(dataset: api.Dataset, where: string): HTMLElement {
  const box = el("div", { className: "dataset" });
  const title = el("div", { className: "dataset-title", textContent: dataset.title || dataset.id });
  const info = el("button", { className: "info", textContent: "i", title: "about this dataset" });
  info.addEventListener("click", () => showInfo(dataset));
  title.append(info);
  box.append(title);
  for (const variable of dataset.variables) {
    const id = `layer-${where}-${dataset.id}-${variable.name}`.replace(/\s+/g, "_");
    const check = el("input", { type: "checkbox", id });
    check.dataset.layer = `${dataset.id}.${variable.name}`;
    check.checked = state.layers.some((l) => l.dataset === dataset.id && l.variable === variable.name);
    check.addEventListener("change", () => toggleLayer(dataset, variable, check.checked));
    const label = el("label", { htmlFor: id,
                                textContent: ` ${variable.title}${variable.units ? ` (${variable.units})` : ""}` });
    box.append(el("div", { className: "variable" }, [check, label]));
  }
  return box;
}

function renderLayers(): void {
  const root = $("layers");
  root.replaceChildren();
  if (!state.layers.length) {
    root.append(el("p", { className: "hint", textContent: "Switch on a variable in the catalogue." }));
    return;
  }
  [...state.layers].reverse().forEach((layer) => {
    const index = state.layers.indexOf(layer);
    const variable = datasets.get(layer.dataset)?.variables.find((v) => v.name === layer.variable);
    const box = el("div", { className: "layer" });
    box.dataset.layer = `${layer.dataset}.${layer.variable}`;
    const up = el("button", { className: "icon", textContent: "▲", title: "move up" });
    up.disabled = index === state.layers.length - 1;
    up.addEventListener("click", () => move(index, 1));
    const down = el("button", { className: "icon", textContent: "▼", title: "move down" });
    down.disabled = index === 0;
    down.addEventListener("click", () => move(index, -1));
    box.append(el("div", { className: "layer-title" }, [
      el("span", { textContent: `${variable?.title ?? layer.variable} · ${layer.dataset}` }), up, down]));

    const opacity = el("input", { type: "range", min: "0", max: "1", step: "0.05", value: String(layer.opacity),
                                  title: "opacity", className: "opacity" });
    opacity.addEventListener("input", () => { layer.opacity = Number(opacity.value); refresh(); });

    const cmap = el("select", { title: "colour map", className: "cmap" });
    for (const name of colormaps) cmap.append(el("option", { value: name, textContent: name }));
    if (!colormaps.includes(layer.style.colormap)) cmap.append(el("option", { value: layer.style.colormap, textContent: layer.style.colormap }));
    cmap.value = layer.style.colormap;
    cmap.addEventListener("change", () => { layer.style.colormap = cmap.value; refresh(); });

    const norm = el("select", { title: "scale", className: "norm" });
    for (const n of ["lin", "log", "cat"]) norm.append(el("option", { value: n, textContent: n }));
    norm.value = layer.style.norm;
    norm.addEventListener("change", () => { layer.style.norm = norm.value as api.TileStyle["norm"]; refresh(); });

    // typed, or slid over 0..2x the variable's default maximum
    const top = Math.max(2 * (variable?.colorBarMax ?? layer.style.vmax), layer.style.vmax);
    const setRange = (which: "vmin" | "vmax", value: number): boolean => {
      const other = which === "vmin" ? layer.style.vmax : layer.style.vmin;
      if (!Number.isFinite(value) || (which === "vmin" ? value >= other : value <= other)) {
        status("the value range needs vmin < vmax", true);
        return false;
      }
      layer.style[which] = value;
      refresh();
      return true;
    };
    const range = (which: "vmin" | "vmax") => {
      const input = el("input", { type: "number", step: "any", value: String(layer.style[which]), title: which,
                                  className: which });
      input.addEventListener("change", () => {
        if (!setRange(which, Number(input.value))) input.value = String(layer.style[which]);
      });
      return input;
    };
    const slider = (which: "vmin" | "vmax") => {
      const input = el("input", { type: "range", min: "0", max: String(top), step: String(top / 200),
                                  value: String(layer.style[which]), title: `${which} (slide)`,
                                  className: `${which}-slider` });
      input.addEventListener("change", () => {
        if (!setRange(which, Number(input.value))) input.value = String(layer.style[which]);
      });
      return input;
    };
    const legend = el("img", { className: "legend", alt: "legend", src: api.legendUrl(layer.dataset, layer.variable, layer.style) });
    box.append(el("div", { className: "layer-row" }, [el("span", { textContent: "opacity" }), opacity]),
               el("div", { className: "layer-row" }, [cmap, norm]),
               legend,
               el("div", { className: "layer-row" }, [range("vmin"), range("vmax")]),
               el("div", { className: "layer-row" }, [slider("vmin"), slider("vmax")]));
    root.append(box);
  });
}

function move(index: number, by: number): void {
  const [layer] = state.layers.splice(index, 1);
  state.layers.splice(index + by, 0, layer);
  refresh();
}

function showInfo(dataset: api.Dataset): void {
  const base = location.href.split("#")[0].replace(/\/$/, "");
  const snippet = [
    "from cubeport.client import open_cube",
    "",
    `cube = open_cube("${base}", "${dataset.id}")  # api_key="..." for restricted cubes`,
    dataset.variables.length ? `cube["${dataset.variables[0].name}"].isel(time=-1).plot()` : "cube",
  ].join("\n");
  $("info-title").textContent = dataset.title || dataset.id;
  $("info-description").textContent = dataset.description ?? "";
  $("info-snippet").textContent = snippet;
  $<HTMLDialogElement>("info").showModal();
}

async function seriesAt(lon: number, lat: number): Promise<void> {
  const top = [...state.layers].reverse();
  if (!top.length) return;
  status(`time series at ${lon.toFixed(4)}, ${lat.toFixed(4)} …`);
  const point = { type: "Point", coordinates: [lon, lat] };
  for (const layer of top) {
    const variable = datasets.get(layer.dataset)?.variables.find((v) => v.name === layer.variable);
    try {
      const points = await api.timeSeries(layer.dataset, layer.variable, point);
      chart.add({ label: `${variable?.title ?? layer.variable} at ${lon.toFixed(3)}, ${lat.toFixed(3)}`,
                  units: variable?.units ?? "", points });
    } catch (error) {
      status(String((error as Error).message), true);
      return;
    }
  }
  $("chart-panel").hidden = false;
  status(`${chart.series.length} series in the chart`);
}

function topLayer(): { layer: LayerState; variable?: api.Variable } | null {
  const layer = state.layers[state.layers.length - 1];
  if (!layer) return null;
  return { layer, variable: datasets.get(layer.dataset)?.variables.find((v) => v.name === layer.variable) };
}

/** Switched-on groups too large to show whole: after each move of the map they show the features in view. */
const inViewGroups = new Map<string, { group: api.PlaceGroup; check: HTMLInputElement }>();
const placeRequests = new Map<string, number>();

/** Show a group's features (or, `inView`, those in the map's view); the checkbox carries how many are shown
 * (`data-shown`) of how many there are (`data-matched`). */
async function showGroup(group: api.PlaceGroup, check: HTMLInputElement, inView = false): Promise<void> {
  const request = (placeRequests.get(group.id) ?? 0) + 1;
  placeRequests.set(group.id, request);
  const found = check.checked ? await api.places(group.id, inView ? dataMap.viewLonLat() : undefined)
    .catch((error: Error) => {
      status(error.message, true);
      return null;
    }) : null;
  if (placeRequests.get(group.id) !== request) return;  // a newer request (a later move, a click) answers
  if (!found) inViewGroups.delete(group.id);
  dataMap.showPlaces(group.id, found);
  const shown = found?.features.length ?? 0;
  const matched = found?.numberMatched ?? shown;
  Object.assign(check.dataset, { shown: String(shown), matched: String(matched), inView: String(inView) });
  if (found && matched > shown) {
    if (!inView) {
      inViewGroups.set(group.id, { group, check });
      return showGroup(group, check, true);
    }
    status(`${group.title}: ${shown} of the ${matched} features in view are shown; zoom in to see them all`);
  }
}

async function renderPlaceGroups(): Promise<void> {
  const root = $("place-groups");
  root.replaceChildren();
  for (const group of await api.placeGroups().catch(() => [])) {
    const id = `places-${group.id}`;
    const check = el("input", { type: "checkbox", id });
    check.dataset.group = group.id;
    check.addEventListener("change", () => void showGroup(group, check));
    root.append(el("div", {}, [check, el("label", { htmlFor: id, textContent: ` ${group.title}` })]));
  }
}

/** A clicked station: the EO series there and the station's in-situ series of the same parameter. */
async function stationSeries(group: string, id: string, name: string, lon: number, lat: number): Promise<void> {
  await seriesAt(lon, lat);
  const top = topLayer();
  if (!top) return;
  const measured = await api.observations(group, id, top.layer.variable).catch(() => []);
  if (measured.length) {
    chart.add({ label: `${name} in situ`, units: measured[0].unit,
                points: measured.map((o) => ({ time: o.time, mean: o.value })) });
  }
}

/** A clicked region (water body): the dashboard of the top layer's variable there. */
async function openDashboard(group: string, id: string, name: string, geometry: object,
                             properties: Record<string, unknown>): Promise<void> {
  const top = topLayer();
  if (!top) {
    status("switch on a variable first", true);
    return;
  }
  status(`dashboard of ${name} …`);
  try {
    const report = await api.placeDashboard(top.layer.dataset, top.layer.variable, group, id, geometry, properties);
    const inSitu = (await Promise.all(dataMap.stationsIn(geometry).map(async (s) =>
      (await api.observations(s.group, s.id, top.layer.variable).catch(() => []))
        .map((o) => ({ time: o.time, value: o.value, station: s.name }))))).flat();
    dashboard.show(`${top.variable?.title ?? top.layer.variable} in ${name}`, top.variable?.units ?? "", report, inSitu);
    status(`dashboard of ${name}: ${report.count} observations`);
  } catch (error) {
    status((error as Error).message, true);
  }
}

/** A drawn polygon: the area series (mean and spread) and the statistics at the current time. */
async function areaAnalysis(geometry: object): Promise<void> {
  const top = topLayer();
  const t = time.time;
  if (!top || !t) {
    status("switch on a variable first", true);
    return;
  }
  try {
    const points = await api.timeSeries(top.layer.dataset, top.layer.variable, geometry);
    chart.add({ label: `${top.variable?.title ?? top.layer.variable} over the polygon`, units: top.variable?.units ?? "",
                points });
    $("chart-panel").hidden = false;
    const s = await api.areaStatistics(top.layer.dataset, top.layer.variable, geometry, t);
    $("area-stats").textContent = s.count
      ? `${t.slice(0, 10)}: ${s.count} pixels, mean ${s.mean?.toPrecision(4)}, std ${s.deviation?.toPrecision(3)}, ` +
        `min ${s.minimum?.toPrecision(4)}, max ${s.maximum?.toPrecision(4)}`
      : `${t.slice(0, 10)}: no valid pixel in the polygon`;
    $("area-stats").dataset.count = String(s.count);
    areaHistogram.show(s.histogram ?? null, top.variable?.units ?? "");
  } catch (error) {
    status((error as Error).message, true);
  }
}

let hoverTimer: number | undefined;
function showValueAt(pixel: number[]): void {
  window.clearTimeout(hoverTimer);
  hoverTimer = window.setTimeout(async () => {
    const where = dataMap.lonLatAt(pixel);
    const layer = state.layers[state.layers.length - 1];
    const t = time.time;
    if (!where || !layer || !t) return;
    const value = await api.valueAt(layer.dataset, layer.variable, where[0], where[1], t).catch(() => null);
    const units = datasets.get(layer.dataset)?.variables.find((v) => v.name === layer.variable)?.units ?? "";
    $("cursor").textContent = `${where[0].toFixed(4)}, ${where[1].toFixed(4)}` +
      (value == null ? "" : ` · ${layer.variable} ${Number(value.toPrecision(5))} ${units}`);
  }, 120);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {},
                                                   children: (Node | string)[] = []): HTMLElementTagNameMap[K] {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

/** Who is signed in, with a sign-out button; restricted datasets come with the session cookie. */
async function renderAccount(): Promise<void> {
  const who = await api.me().catch(() => null);
  if (!who?.signed_in) return;
  const out = el("button", { id: "sign-out", textContent: "sign out" });
  out.addEventListener("click", async () => {
    await api.signOut(who).catch((error) => status((error as Error).message, true));
    location.reload();
  });
  $("account").replaceChildren(el("span", { id: "user", textContent: who.name ?? "" }), " ", out);
}

function wireControls(): void {
  dataMap.map.on("singleclick", (event) => {
    const where = dataMap.lonLatAt(event.pixel);
    const place = dataMap.placeAt(event.pixel);
    if (place && where) {
      const { group, feature } = place;
      const id = String(feature.getId());
      const name = String(feature.get("name") ?? id);
      if (feature.getGeometry()?.getType() === "Point") void stationSeries(group, id, name, ...where);
      else void openDashboard(group, id, name, placeGeometry(feature), feature.getProperties());
    } else if (where) {
      void seriesAt(...where);
    }
  });
  $("draw-polygon").addEventListener("click", () => {
    status("draw the polygon: click its corners, double-click to finish");
    dataMap.drawPolygon((geometry) => void areaAnalysis(geometry));
  });
  $("dashboard-close").addEventListener("click", () => { $("dashboard").hidden = true; dashboard.clear(); });
  dataMap.map.on("pointermove", (event) => { if (!event.dragging) showValueAt(event.pixel); });
  dataMap.map.on("moveend", () => {
    state.center = dataMap.centerLonLat();
    state.zoom = dataMap.map.getView().getZoom() ?? state.zoom;
    history.replaceState(null, "", writeHash(state));
    for (const { group, check } of inViewGroups.values()) void showGroup(group, check, true);
  });
  const basemap = $<HTMLSelectElement>("basemap");
  basemap.value = state.basemap;
  dataMap.setBasemap(state.basemap);
  basemap.addEventListener("change", () => {
    state.basemap = basemap.value as ViewState["basemap"];
    dataMap.setBasemap(state.basemap);
    refresh();
  });
  const projection = $<HTMLSelectElement>("projection");
  projection.value = state.projection;
  projection.addEventListener("change", () => {
    state.center = dataMap.centerLonLat();
    state.projection = projection.value as ViewState["projection"];
    dataMap.setProjection(state);
    refresh();
  });
  $("theme-toggle").addEventListener("click", () => {
    state.theme = state.theme === "light" ? "dark" : "light";
    document.documentElement.dataset.theme = state.theme;
    refresh();
  });
  $("chart-csv").addEventListener("click", () =>
    download("timeseries.csv", URL.createObjectURL(new Blob([chart.csv()], { type: "text/csv" }))));
  $("chart-png").addEventListener("click", () => download("timeseries.png", chart.png()));
  $("chart-clear").addEventListener("click", () => { chart.clear(); $("chart-panel").hidden = true; });
  $("info-close").addEventListener("click", () => $<HTMLDialogElement>("info").close());
  $("jobs-toggle").addEventListener("click", () => (jobs.isOpen ? jobs.close() : jobs.open()));
  $("jobs-close").addEventListener("click", () => jobs.close());
  $("ops-toggle").addEventListener("click", () => (operations.isOpen ? operations.close() : operations.open()));
  $("ops-close").addEventListener("click", () => operations.close());
}

/** The Operations button for admins and the operators group only (the server refuses everyone else too). */
async function revealOperations(): Promise<void> {
  const button = $("ops-toggle");
  button.hidden = !mayOperate(await api.me().catch(() => null));
  button.dataset.checked = "true";
}

async function start(): Promise<void> {
  wireControls();
  void revealOperations();
  try {
    const [found, maps] = await Promise.all([api.datasets(), api.colormaps()]);
    colormaps = maps;
    for (const dataset of found) datasets.set(dataset.id, dataset);
  } catch (error) {
    status(`the server did not answer: ${(error as Error).message}`, true);
    return;
  }
  // layers of the permalink that exist, once each, with the variable's defaults for a missing or bad style
  const seen = new Set<string>();
  state.layers = state.layers.flatMap((layer) => {
    const variable = datasets.get(layer.dataset)?.variables.find((v) => v.name === layer.variable);
    const key = `${layer.dataset}/${layer.variable}`;
    if (!variable || seen.has(key)) return [];
    seen.add(key);
    const { vmin, vmax } = layer.style;
    if (!(Number.isFinite(vmin) && Number.isFinite(vmax) && vmin < vmax)) {
      layer.style = { ...layer.style, vmin: variable.colorBarMin, vmax: variable.colorBarMax };
    }
    return [layer];
  });
  renderCatalogue();
  void renderPlaceGroups();
  void renderAccount();
  updateTimes();
  refresh();
  status(`${datasets.size} datasets`);
  document.body.dataset.ready = "true";
}

void start();

function placeGeometry(feature: Feature): object {
  return new GeoJSON().writeGeometryObject(feature.getGeometry()!, {
    dataProjection: "EPSG:4326", featureProjection: dataMap.map.getView().getProjection() });
}
