// The OpenLayers map: Web Mercator or the Finnish TM35FIN grid (EPSG:3067), a scale bar, and one XYZ tile
// layer per switched-on variable, each drawn on its own canvas (class "data-layer").

import OlMap from "ol/Map";
import View from "ol/View";
import TileLayer from "ol/layer/Tile";
import XYZ from "ol/source/XYZ";
import ScaleLine from "ol/control/ScaleLine";
import { defaults as defaultControls } from "ol/control/defaults";
import { register } from "ol/proj/proj4";
import { fromLonLat, toLonLat, transformExtent, get as getProjection } from "ol/proj";
import { containsExtent } from "ol/extent";
import GeoJSON from "ol/format/GeoJSON";
import Draw from "ol/interaction/Draw";
import VectorLayer from "ol/layer/Vector";
import VectorSource from "ol/source/Vector";
import { Circle, Fill, Stroke, Style, Text } from "ol/style";
import type Feature from "ol/Feature";
import OSM from "ol/source/OSM";
import proj4 from "proj4";

import { tileUrl, type Dataset } from "./api";
import type { LayerState, ViewState } from "./state";

proj4.defs("EPSG:3067", "+proj=utm +zone=35 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs +type=crs");
register(proj4);
getProjection("EPSG:3067")?.setExtent([-548576, 6291456, 1548576, 8388608]);

export class DataMap {
  readonly map: OlMap;
  private readonly layers = new Map<string, TileLayer<XYZ>>();
  private readonly places = new Map<string, VectorLayer>();

  /** Land drawn from the server's vector data (works offline; the sea is the map's background). */
  private readonly land = new VectorLayer({
    className: "basemap-land", zIndex: -2,
    source: new VectorSource({ url: "basemaps/land.geojson", format: new GeoJSON() }),
    style: new Style({ fill: new Fill({ color: "#e8e4d8" }), stroke: new Stroke({ color: "#9a9482", width: 0.5 }) }),
  });
  /** OpenStreetMap, only when chosen: it needs the internet. */
  private readonly online = new TileLayer({ source: new OSM(), zIndex: -1, visible: false });

  constructor(target: HTMLElement, state: ViewState) {
    this.map = new OlMap({
      target,
      controls: defaultControls().extend([new ScaleLine({ units: "metric" })]),
      layers: [this.land, this.online],
      view: this.view(state),
    });
  }

  setBasemap(name: "land" | "osm" | "none"): void {
    this.land.setVisible(name === "land");
    this.online.setVisible(name === "osm");
  }

  private view(state: ViewState): View {
    return new View({
      projection: state.projection, center: fromLonLat(state.center, state.projection), zoom: state.zoom,
    });
  }

  /** A new view in another projection; layers whose extent or features are in map units start afresh. */
  setProjection(state: ViewState): void {
    this.map.setView(this.view(state));
    this.land.getSource()?.refresh(); // re-read in the new projection
    for (const layer of this.layers.values()) this.map.removeLayer(layer);
    this.layers.clear(); // `show` makes them again, with extents in the new projection
    for (const [group, layer] of [...this.places]) this.showPlaces(group, layer.get("collection"));
  }

  /** The layers shown, bottom first, each with its tiles for `time`. */
  show(layers: LayerState[], time: string, datasets: ReadonlyMap<string, Dataset>): void {
    const wanted = new Set(layers.map((l) => `${l.dataset}.${l.variable}`));
    for (const [key, layer] of this.layers) {
      if (!wanted.has(key)) {
        this.map.removeLayer(layer);
        this.layers.delete(key);
      }
    }
    layers.forEach((state, index) => {
      const key = `${state.dataset}.${state.variable}`;
      const url = tileUrl(state.dataset, state.variable, time, state.style);
      let layer = this.layers.get(key);
      if (!layer) {
        const dataset = datasets.get(state.dataset);
        const variable = dataset?.variables.find((v) => v.name === state.variable);
        const projection = this.map.getView().getProjection();
        const extent = dataset ? transformExtent(dataset.bbox, "EPSG:4326", projection) : undefined;
        layer = new TileLayer({
          className: "data-layer",
          extent,
          source: new XYZ({ url, crossOrigin: "anonymous", maxZoom: (variable?.tileLevelMax ?? 12) + 1,
                            projection: "EPSG:3857" }),
        });
        layer.set("key", key);
        this.layers.set(key, layer);
        this.map.addLayer(layer);
      } else if (layer.getSource()?.getUrls()?.[0] !== url) {
        layer.getSource()?.setUrl(url);
      }
      layer.setOpacity(state.opacity);
      layer.setZIndex(index + 1);
    });
  }

  /** A place group as a vector layer above the data (points as stations, polygons as outlined regions). */
  showPlaces(group: string, collection: object | null): void {
    const old = this.places.get(group);
    if (old) this.map.removeLayer(old);
    this.places.delete(group);
    if (!collection) return;
    const projection = this.map.getView().getProjection();
    const source = new VectorSource({
      features: new GeoJSON().readFeatures(collection, { dataProjection: "EPSG:4326", featureProjection: projection }),
    });
    const layer = new VectorLayer({
      source, zIndex: 1000, className: "places-layer",
      style: (feature) => new Style({
        stroke: new Stroke({ color: "#1f2d3d", width: 1.5 }), fill: new Fill({ color: "rgba(255,255,255,0.08)" }),
        image: new Circle({ radius: 5, fill: new Fill({ color: "#d62728" }), stroke: new Stroke({ color: "#fff" }) }),
        text: new Text({ text: String(feature.get("name") ?? ""), offsetY: -12, font: "11px system-ui" }),
      }),
    });
    layer.set("group", group);
    layer.set("collection", collection);
    this.places.set(group, layer);
    this.map.addLayer(layer);
  }

  /** The place under a pixel, top group first. */
  placeAt(pixel: number[]): { group: string; feature: Feature } | null {
    let found: { group: string; feature: Feature } | null = null;
    this.map.forEachFeatureAtPixel(pixel, (feature, layer) => {
      found = { group: layer.get("group"), feature: feature as Feature };
      return true;
    }, { layerFilter: (layer) => layer.get("group") !== undefined, hitTolerance: 4 });
    return found;
  }

  /** The features of the shown point groups (stations) inside a lon/lat polygon. */
  stationsIn(polygon: object): { group: string; id: string; name: string }[] {
    const projection = this.map.getView().getProjection();
    const area = new GeoJSON().readGeometry(polygon, { dataProjection: "EPSG:4326", featureProjection: projection });
    const found = [];
    for (const [group, layer] of this.places) {
      for (const feature of layer.getSource()?.getFeatures() ?? []) {
        const geometry = feature.getGeometry();
        if (area && geometry?.getType() === "Point" && area.intersectsExtent(geometry.getExtent())) {
          found.push({ group, id: String(feature.getId()), name: String(feature.get("name") ?? feature.getId()) });
        }
      }
    }
    return found;
  }

  /** Let the user draw one polygon; `done` gets it as lon/lat GeoJSON. */
  drawPolygon(done: (geometry: object) => void): void {
    const source = new VectorSource();
    const layer = new VectorLayer({ source, zIndex: 1001 });
    this.map.addLayer(layer);
    const draw = new Draw({ source, type: "Polygon" });
    draw.on("drawend", (event) => {
      this.map.removeInteraction(draw);
      window.setTimeout(() => this.map.removeLayer(layer), 1500);
      const projection = this.map.getView().getProjection();
      done(new GeoJSON().writeGeometryObject(event.feature.getGeometry()!, {
        dataProjection: "EPSG:4326", featureProjection: projection }));
    });
    this.map.addInteraction(draw);
  }

  /** Fit the view to the dataset, unless the view already looks at a part of it. */
  reveal(dataset: Dataset): void {
    const view = this.map.getView();
    const extent = transformExtent(dataset.bbox, "EPSG:4326", view.getProjection());
    if (!containsExtent(extent, view.calculateExtent(this.map.getSize()))) {
      view.fit(extent, { padding: [20, 20, 20, 20] });
    }
  }

  lonLatAt(pixel: number[]): [number, number] | null {
    const coordinate = this.map.getCoordinateFromPixel(pixel);
    if (!coordinate) return null;
    const [lon, lat] = toLonLat(coordinate, this.map.getView().getProjection());
    return [lon, lat];
  }

  /** The view's extent in degrees (west, south, east, north), within the world's. */
  viewLonLat(): number[] {
    const view = this.map.getView();
    const [west, south, east, north] = transformExtent(view.calculateExtent(this.map.getSize()),
                                                       view.getProjection(), "EPSG:4326");
    return [Math.max(west, -180), Math.max(south, -90), Math.min(east, 180), Math.min(north, 90)];
  }

  centerLonLat(): [number, number] {
    const view = this.map.getView();
    const [lon, lat] = toLonLat(view.getCenter() ?? [0, 0], view.getProjection());
    return [lon, lat];
  }
}
