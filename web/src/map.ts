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
import proj4 from "proj4";

import { tileUrl, type Dataset } from "./api";
import type { LayerState, ViewState } from "./state";

proj4.defs("EPSG:3067", "+proj=utm +zone=35 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs +type=crs");
register(proj4);
getProjection("EPSG:3067")?.setExtent([-548576, 6291456, 1548576, 8388608]);

export class DataMap {
  readonly map: OlMap;
  private readonly layers = new Map<string, TileLayer<XYZ>>();

  constructor(target: HTMLElement, state: ViewState) {
    this.map = new OlMap({
      target,
      controls: defaultControls().extend([new ScaleLine({ units: "metric" })]),
      view: this.view(state),
    });
  }

  private view(state: ViewState): View {
    return new View({
      projection: state.projection, center: fromLonLat(state.center, state.projection), zoom: state.zoom,
    });
  }

  setProjection(state: ViewState): void {
    this.map.setView(this.view(state));
    for (const layer of this.layers.values()) layer.getSource()?.refresh();
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

  centerLonLat(): [number, number] {
    const view = this.map.getView();
    const [lon, lat] = toLonLat(view.getCenter() ?? [0, 0], view.getProjection());
    return [lon, lat];
  }
}
