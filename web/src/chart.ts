// Time-series charts (Chart.js): several series in one chart, mean with a +-std band, CSV and PNG export.

import {
  Chart, LineController, LineElement, PointElement, LinearScale, Legend, Tooltip, Filler, type ChartDataset,
} from "chart.js";

import type { SeriesPoint } from "./api";

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Tooltip, Filler);

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

export interface Series {
  label: string;
  units: string;
  points: SeriesPoint[];
}

export class SeriesChart {
  private readonly chart: Chart<"line", { x: number; y: number | null }[]>;
  readonly series: Series[] = [];

  constructor(private readonly canvas: HTMLCanvasElement) {
    this.chart = new Chart(canvas, {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", ticks: { callback: (value) => new Date(Number(value)).toISOString().slice(0, 10) } },
          y: { type: "linear" },
        },
        plugins: {
          legend: { labels: { filter: (item) => !item.text.endsWith(" ±std") } },
          tooltip: { callbacks: { title: (items) => new Date(items[0].parsed.x ?? 0).toISOString().slice(0, 10) } },
        },
      },
    });
  }

  add(series: Series): void {
    this.series.push(series);
    this.redraw();
  }

  clear(): void {
    this.series.length = 0;
    this.redraw();
  }

  private redraw(): void {
    const datasets: ChartDataset<"line", { x: number; y: number | null }[]>[] = [];
    this.series.forEach((series, index) => {
      const colour = COLOURS[index % COLOURS.length];
      const at = (p: SeriesPoint) => Date.parse(p.time);
      const withStd = series.points.some((p) => p.std != null);
      if (withStd) {
        const band = (sign: number) => series.points.map((p) => ({
          x: at(p), y: p.mean == null || p.std == null ? null : p.mean + sign * p.std,
        }));
        datasets.push({ label: `${series.label} ±std`, data: band(-1), borderWidth: 0, pointRadius: 0,
                        backgroundColor: colour + "22", fill: false, order: 2 });
        datasets.push({ label: `${series.label} ±std`, data: band(1), borderWidth: 0, pointRadius: 0,
                        backgroundColor: colour + "22", fill: "-1", order: 2 });
      }
      datasets.push({
        label: series.units ? `${series.label} (${series.units})` : series.label,
        data: series.points.map((p) => ({ x: at(p), y: p.mean })),
        borderColor: colour, backgroundColor: colour, pointRadius: 2, borderWidth: 1.5, spanGaps: false, order: 1,
      });
    });
    this.chart.data.datasets = datasets;
    this.chart.update();
    this.canvas.dataset.points = String(this.series.reduce((n, s) => n + s.points.length, 0));
  }

  /** The series as CSV: one row per time, one column per series. */
  csv(): string {
    const times = [...new Set(this.series.flatMap((s) => s.points.map((p) => p.time)))].sort();
    const header = ["time", ...this.series.map((s) => csvField(s.units ? `${s.label} (${s.units})` : s.label))];
    const rows = times.map((time) => [time, ...this.series.map((s) => {
      const value = s.points.find((p) => p.time === time)?.mean;
      return value == null ? "" : String(value);
    })]);
    return [header, ...rows].map((row) => row.join(",")).join("\n") + "\n";
  }

  png(): string {
    return this.canvas.toDataURL("image/png");
  }
}

function csvField(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function download(name: string, href: string): void {
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  link.click();
}
