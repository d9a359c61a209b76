// The Jobs panel: the signed-in user's processing jobs (GET /jobs, newest first) with status, progress and
// times. A row opens the job: its steps, its log, Dismiss while it waits or runs, and for a successful job its
// output (a cube opens on the map, a collection links to its items). While a job waits or runs the panel asks
// again every POLL_MS; it stops when none does or the panel closes.

import * as api from "./api";

const POLL_MS = 2000;
const ACTIVE: ReadonlySet<api.JobStatus> = new Set(["accepted", "running"]);

export interface JobsHost {
  /** Show a cube that a job made (new to the viewer's dataset list) on the map. */
  openCube(id: string): Promise<void>;
  status(message: string, error?: boolean): void;
}

export class JobsPanel {
  private list: api.Job[] = [];
  private selected: string | null = null;
  private timer: number | undefined;
  private round = 0; // a load started before a close (or a newer load) does not draw or poll again
  private who: api.Me | null = null;
  private readonly outputs = new Map<string, Record<string, api.JobOutput | unknown>>(); // successful: final

  constructor(private readonly root: HTMLElement, private readonly host: JobsHost) {}

  get isOpen(): boolean {
    return !this.root.hidden;
  }

  open(): void {
    this.root.hidden = false;
    void this.load();
  }

  close(): void {
    this.root.hidden = true;
    this.stop();
    this.round++;
  }

  private stop(): void {
    window.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Read the jobs (and the open job's log and outputs), draw them, and poll again while any is active. */
  async load(): Promise<void> {
    this.stop();
    const round = ++this.round;
    try {
      if (!this.who?.signed_in) this.who = await api.me();
      const found = this.who.signed_in ? await api.jobs() : null;
      if (round !== this.round) return;
      if (found === null) {
        this.who = null; // signed out meanwhile: ask again next time
        this.signInHint();
        return;
      }
      this.list = found;
      const listed = found.find((j) => j.jobID === this.selected);
      const [job, log] = listed ? await Promise.all([api.job(listed.jobID), api.jobLog(listed.jobID)]) : [undefined, ""];
      if (job?.status === "successful" && !this.outputs.has(job.jobID)) {
        this.outputs.set(job.jobID, await api.jobResults(job.jobID));
      }
      if (round !== this.round) return;
      this.render(job, log);
    } catch (error) {
      if (round === this.round) this.host.status(`jobs: ${(error as Error).message}`, true);
    }
    if (round === this.round && this.isOpen && this.list.some((j) => ACTIVE.has(j.status))) {
      this.timer = window.setTimeout(() => void this.load(), POLL_MS);
    }
    this.root.dataset.polling = String(this.timer !== undefined);
  }

  private signInHint(): void {
    const link = el("a", { href: "auth/login?next=/", textContent: "Sign in" });
    this.body().replaceChildren(el("p", { className: "hint" }, [link, " to see your processing jobs."]));
    this.root.dataset.polling = "false";
  }

  private body(): HTMLElement {
    return this.root.querySelector<HTMLElement>(".jobs-body")!;
  }

  private render(job: api.Job | undefined, log: string): void {
    const body = this.body();
    if (!this.list.length) {
      body.replaceChildren(el("p", { className: "hint",
                                     textContent: "No jobs yet: run a process through the API (POST /processes/{id}/execution)." }));
      return;
    }
    const rows = this.list.map((j) => {
      const row = el("tr", { className: j.jobID === this.selected ? "selected" : "", title: "show its steps and log" });
      Object.assign(row.dataset, { job: j.jobID, status: j.status });
      row.addEventListener("click", () => this.select(j.jobID));
      row.append(
        el("td", { textContent: j.processID }),
        el("td", { className: "job-status", textContent: j.status }),
        el("td", {}, [el("progress", { max: 100, value: j.progress, title: `${j.progress} %` })]),
        el("td", { textContent: when(j.created) }),
        el("td", { textContent: duration(j) }),
      );
      return row;
    });
    const table = el("table", { className: "job-list" }, [
      el("thead", {}, [el("tr", {}, ["process", "status", "progress", "created (UTC)", "took"].map(
        (name) => el("th", { textContent: name })))]),
      el("tbody", {}, rows),
    ]);
    const old = body.querySelector<HTMLElement>(".job-detail");
    const kept = old?.dataset.job === job?.jobID ? old?.querySelector("pre") : null; // where the reader was
    const top = kept?.scrollTop ?? 0;
    const atEnd = kept ? top + kept.clientHeight >= kept.scrollHeight - 4 : true;
    body.replaceChildren(table);
    if (!job) return;
    body.append(this.detail(job, log));
    const pre = body.querySelector("pre")!;
    pre.scrollTop = atEnd ? pre.scrollHeight : top;
  }

  private select(id: string): void {
    this.selected = this.selected === id ? null : id;
    void this.load();
  }

  /** The open job: message, steps, actions and log. */
  private detail(job: api.Job, log: string): HTMLElement {
    const box = el("div", { className: "job-detail" });
    box.dataset.job = job.jobID;
    const actions = el("div", { className: "chart-tools" }, [
      el("strong", { textContent: `${job.processID} · ${job.jobID.slice(0, 8)}` }),
      el("span", { className: "spacer" }),
    ]);
    if (ACTIVE.has(job.status)) {
      const dismiss = el("button", { className: "job-dismiss", textContent: "Dismiss", title: "stop this job" });
      dismiss.addEventListener("click", () => void this.dismiss(job.jobID, dismiss));
      actions.append(dismiss);
    }
    for (const output of Object.values(this.outputs.get(job.jobID) ?? {})) {
      const ref = output as api.JobOutput | null;
      if (ref?.cube) {
        const cube = ref.cube;
        const open = el("button", { className: "job-open", textContent: "Open on map", title: `show cube ${cube}` });
        open.addEventListener("click", () => void this.host.openCube(cube).catch(
          (error: Error) => this.host.status(error.message, true)));
        actions.append(open);
      } else if (ref?.collection) {
        actions.append(el("a", { className: "job-items", href: ref.href, target: "_blank",
                                 textContent: `items of ${ref.collection}` }));
      }
    }
    box.append(actions);
    if (job.message) box.append(el("p", { className: "job-message", textContent: job.message }));
    const steps = el("ol", { className: "job-steps" }, job.steps.map((s) => {
      const item = el("li", { textContent: `${s.name}: ${s.status}${s.status === "running" ? ` ${s.progress} %` : ""}` });
      Object.assign(item.dataset, { step: s.name, status: s.status });
      return item;
    }));
    box.append(steps, el("pre", { className: "job-log", textContent: log || "(no log yet)" }));
    return box;
  }

  private async dismiss(id: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      if (!this.who) throw new api.ApiError("sign in again to dismiss a job");
      await api.dismissJob(id, this.who);
      this.host.status(`job ${id.slice(0, 8)} dismissed`);
    } catch (error) {
      this.host.status((error as Error).message, true);
    }
    await this.load();
  }
}

function when(time: string | null): string {
  return time ? time.replace("T", " ").slice(0, 19) : "";
}

/** How long a job ran (or has been running); empty before it starts. */
function duration(job: api.Job): string {
  if (!job.started) return "";
  const end = job.finished ? Date.parse(job.finished) : Date.now();
  const seconds = Math.max(0, (end - Date.parse(job.started)) / 1000);
  return seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {},
                                                   children: (Node | string)[] = []): HTMLElementTagNameMap[K] {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}
