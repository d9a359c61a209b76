// The analysis dashboard of a region (a water body or a drawn polygon): the EO observations over the classes
// (doughnut), the summer mean per year (bars), the daily mean over time and the histogram with the class limits
// as coloured bands, and a table of daily EO and in-situ values.

import {
  ArcElement, BarController, BarElement, CategoryScale, Chart, DoughnutController, Legend, LinearScale,
  LineController, LineElement, PointElement, Tooltip, type Plugin,
} from "chart.js";

Chart.register(ArcElement, BarController, BarElement, CategoryScale, DoughnutController, Legend, LinearScale,
               LineController, LineElement, PointElement, Tooltip);

export const CLASS_COLOURS = ["#2b83ba", "#7fc97f", "#ffd92f", "#fd8d3c", "#d7191c"];

export interface ClassReport {
  place?: { group: string; id: string; name: string };
  classes: { name: string; count: number; fraction: number | null; lower: number | null; upper: number | null }[];
  limits: number[];
  count: number;
  summer: { year: number; mean: number | null; count: number; class: string | null }[];
  daily: { time: string; mean: number | null; std: number | null; count: number }[];
  histogram: { values: number[]; edges: number[] } | null;
}

export interface Observation {
  time: string;
  value: number;
  station: string;
}

/** Coloured bands between the class limits, behind a chart, along its x or y axis. */
function bands(limits: number[], axis: "x" | "y"): Plugin {
  return {
    id: `class-bands-${axis}`,
    beforeDatasetsDraw(chart) {
      const scale = chart.scales[axis];
      const { ctx, chartArea } = chart;
      const edges = [scale.min, ...limits, scale.max];
      ctx.save();
      edges.slice(0, -1).forEach((lo, i) => {
        const hi = edges[i + 1];
        if (hi <= scale.min || lo >= scale.max) return;
        const a = scale.getPixelForValue(Math.max(lo, scale.min));
        const b = scale.getPixelForValue(Math.min(hi, scale.max));
        ctx.fillStyle = CLASS_COLOURS[i] + "33";
        if (axis === "y") ctx.fillRect(chartArea.left, Math.min(a, b), chartArea.width, Math.abs(b - a));
        else ctx.fillRect(Math.min(a, b), chartArea.top, Math.abs(b - a), chartArea.height);
      });
      ctx.restore();
    },
  };
}

export class Dashboard {
  private charts: Chart[] = [];

  constructor(private readonly root: HTMLElement) {}

  show(title: string, units: string, report: ClassReport, observations: Observation[]): void {
    this.clear();
    this.root.querySelector(".dashboard-title")!.textContent = title;
    const canvas = (name: string) => this.root.querySelector(`canvas.${name}`) as HTMLCanvasElement;
    const withData = report.classes.filter((c) => c.count > 0);
    this.root.dataset.classes = JSON.stringify(Object.fromEntries(report.classes.map((c) => [c.name, c.count])));
    this.charts.push(new Chart(canvas("classes"), {
      type: "doughnut",
      data: { labels: report.classes.map((c) => c.name),
              datasets: [{ data: report.classes.map((c) => c.count), backgroundColor: CLASS_COLOURS }] },
      options: { animation: false, maintainAspectRatio: false,
                 plugins: { legend: { position: "right" },
                            tooltip: { callbacks: { label: (item) => {
                              const c = report.classes[item.dataIndex];
                              return `${c.name}: ${c.count} (${((c.fraction ?? 0) * 100).toFixed(1)} %)`;
                            } } } } },
    }));
    this.charts.push(new Chart(canvas("summer"), {
      type: "bar",
      data: { labels: report.summer.map((s) => String(s.year)),
              datasets: [{ label: `June–September mean (${units})`, data: report.summer.map((s) => s.mean),
                           backgroundColor: report.summer.map((s) => CLASS_COLOURS[
                             Math.max(0, report.classes.findIndex((c) => c.name === s.class))]) }] },
      options: { animation: false, maintainAspectRatio: false },
      plugins: [bands(report.limits, "y")],
    }));
    this.charts.push(new Chart(canvas("daily"), {
      type: "line",
      data: { datasets: [
        { label: `EO mean (${units})`, data: report.daily.map((d) => ({ x: Date.parse(d.time), y: d.mean })),
          borderColor: "#1f2d3d", backgroundColor: "#1f2d3d", pointRadius: 2, borderWidth: 1, spanGaps: false },
        { label: "in situ", data: observations.map((o) => ({ x: Date.parse(o.time), y: o.value })),
          borderColor: "#d62728", backgroundColor: "#d62728", showLine: false, pointRadius: 4,
          pointStyle: "triangle" },
      ] },
      options: { animation: false, maintainAspectRatio: false, parsing: false,
                 scales: { x: { type: "linear", ticks: { callback: (v) => new Date(Number(v)).toISOString().slice(0, 10) } } } },
      plugins: [bands(report.limits, "y")],
    }));
    if (report.histogram) {
      const { values, edges } = report.histogram;
      this.charts.push(new Chart(canvas("histogram"), {
        type: "bar",
        data: { datasets: [{ label: "EO observations", data: values.map((n, i) => ({ x: (edges[i] + edges[i + 1]) / 2, y: n })),
                             backgroundColor: "#1f2d3d", barPercentage: 1, categoryPercentage: 1 }] },
        options: { animation: false, maintainAspectRatio: false, parsing: false,
                   scales: { x: { type: "linear", min: edges[0], max: edges[edges.length - 1] } } },
        plugins: [bands(report.limits, "x")],
      }));
    }
    this.table(report, observations);
    this.root.hidden = false;
  }

  private table(report: ClassReport, observations: Observation[]): void {
    const body = this.root.querySelector("tbody")!;
    body.replaceChildren();
    const byDay = new Map<string, string[]>();
    for (const o of observations) {
      const day = o.time.slice(0, 10);
      byDay.set(day, [...(byDay.get(day) ?? []), `${o.value} (${o.station})`]);
    }
    for (const d of report.daily) {
      const row = document.createElement("tr");
      for (const text of [d.time.slice(0, 10), d.mean == null ? "" : d.mean.toPrecision(4),
                          d.std == null ? "" : d.std.toPrecision(3), String(d.count),
                          (byDay.get(d.time.slice(0, 10)) ?? []).join(", ")]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      body.append(row);
    }
  }

  clear(): void {
    this.charts.forEach((c) => c.destroy());
    this.charts = [];
  }
}

/** A histogram (counts between edges) in a small chart, e.g. of a drawn polygon's values at one time. */
export class Histogram {
  private chart: Chart | null = null;

  constructor(private readonly canvas: HTMLCanvasElement) {}

  show(histogram: { values: number[]; edges: number[] } | null, units: string): void {
    this.chart?.destroy();
    this.chart = null;
    this.canvas.hidden = !histogram;
    if (!histogram) return;
    const { values, edges } = histogram;
    this.chart = new Chart(this.canvas, {
      type: "bar",
      data: { datasets: [{ label: `pixels per value (${units})`, backgroundColor: "#1f77b4",
                           data: values.map((n, i) => ({ x: (edges[i] + edges[i + 1]) / 2, y: n })),
                           barPercentage: 1, categoryPercentage: 1 }] },
      options: { animation: false, maintainAspectRatio: false, parsing: false,
                 scales: { x: { type: "linear", min: edges[0], max: edges[edges.length - 1] } } },
    });
    this.canvas.dataset.bins = String(values.length);
  }
}
