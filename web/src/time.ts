// Time controls: a slider over the steps of the shown datasets, step back and forward, play at a settable
// speed, and a date picker that jumps to the nearest step.

export class TimeControl {
  private times: string[] = [];
  private index = 0;
  private timer: number | undefined;

  constructor(private readonly root: HTMLElement, private readonly onChange: (time: string) => void) {
    this.element("time-back").addEventListener("click", () => this.step(-1));
    this.element("time-forward").addEventListener("click", () => this.step(1));
    this.element("time-play").addEventListener("click", () => this.toggle());
    this.input("time-slider").addEventListener("input", (e) => this.go(Number((e.target as HTMLInputElement).value)));
    this.input("time-date").addEventListener("change", (e) => this.jump((e.target as HTMLInputElement).value));
    this.input("time-speed").addEventListener("change", () => this.timer !== undefined && this.restart());
  }

  /** The steps to choose from (ISO, sorted) and the one to show (nearest; default the newest). */
  setTimes(times: string[], wanted: string | null): void {
    this.times = times;
    const slider = this.input("time-slider");
    slider.max = String(Math.max(times.length - 1, 0));
    slider.disabled = times.length < 2;
    this.go(wanted ? nearest(times, wanted) : times.length - 1, false);
  }

  get time(): string | null {
    return this.times[this.index] ?? null;
  }

  private go(index: number, notify = true): void {
    if (!this.times.length) return;
    this.index = Math.min(Math.max(index, 0), this.times.length - 1);
    const time = this.times[this.index];
    this.input("time-slider").value = String(this.index);
    this.input("time-date").value = time.slice(0, 10);
    this.element("time-label").textContent = time.replace("T00:00:00Z", "").replace("T", " ").replace("Z", " UTC");
    if (notify) this.onChange(time);
  }

  private step(by: number): void {
    this.go((this.index + by + this.times.length) % this.times.length);
  }

  private jump(date: string): void {
    if (date) this.go(nearest(this.times, date + "T12:00:00Z"));
  }

  private toggle(): void {
    if (this.timer === undefined) this.restart();
    else this.stop();
  }

  private restart(): void {
    this.stop();
    const perSecond = Math.max(Number(this.input("time-speed").value) || 1, 0.1);
    this.timer = window.setInterval(() => this.step(1), 1000 / perSecond);
    this.element("time-play").textContent = "⏸";
    this.element("time-play").setAttribute("aria-label", "pause");
  }

  stop(): void {
    if (this.timer !== undefined) window.clearInterval(this.timer);
    this.timer = undefined;
    this.element("time-play").textContent = "▶";
    this.element("time-play").setAttribute("aria-label", "play");
  }

  private element(id: string): HTMLElement {
    return this.root.querySelector(`#${id}`) as HTMLElement;
  }

  private input(id: string): HTMLInputElement {
    return this.element(id) as HTMLInputElement;
  }
}

function nearest(times: string[], wanted: string): number {
  const target = Date.parse(wanted);
  let best = times.length - 1;
  times.forEach((time, i) => {
    if (Math.abs(Date.parse(time) - target) < Math.abs(Date.parse(times[best]) - target)) best = i;
  });
  return best;
}
