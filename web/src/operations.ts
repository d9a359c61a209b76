// The Operations panel (admins and the `operators` group): the runner, the watchers, each suite's latest run as a
// tree of nodes coloured by state as ecFlow colours them, the operator's actions on a selected node, a task's
// output, the last 24 h of task tries as a timeline, and the deliveries. Everything comes from GET /ops/status,
// asked again every POLL_MS while the panel is open (and not once it closes).

import * as api from "./api";

const POLL_MS = 3000;
const HOUR_MS = 3600 * 1000;
const WINDOW_MS = 24 * HOUR_MS;
const BUSY: ReadonlySet<api.NodeState> = new Set(["submitted", "active"]);
const OPERATORS = "operators"; // the group of the server's OPERATOR guard (api/security.py)

/** Whether /auth/me's caller may operate: what the server's OPERATOR guard lets through. */
export function mayOperate(who: api.Me | null): boolean {
  return !!who?.signed_in && (who.role === "admin" || (who.groups ?? []).includes(OPERATORS));
}

/** A node with a task that runs (submitted or active) below it (or being one): such a node can only be killed,
 * since the server refuses requeue, rerun, run and complete there (runs.py `act`). */
function busy(node: api.OpsNode): boolean {
  return BUSY.has(node.state) || node.children.some(busy);
}

/** The actions that make sense for a node's state, in the order the buttons show them. */
export function actionsFor(node: api.OpsNode): api.OpsAction[] {
  const actions: api.OpsAction[] = [];
  if (busy(node)) {
    actions.push("kill");
  } else {
    if (node.state === "queued" || node.state === "aborted") actions.push("run");
    if (node.state === "aborted" || node.state === "complete") actions.push("rerun", "requeue");
    if (node.state !== "complete") actions.push("complete");
  }
  actions.push(node.suspended ? "resume" : "suspend");
  return actions;
}

const HINTS: Record<api.OpsAction, string> = {
  run: "submit now, whatever its triggers, limits or suspension",
  rerun: "queue again; triggers hold, the try count goes on",
  requeue: "queue again from try 1",
  complete: "set complete (what waits for it goes on)",
  kill: "stop its running tasks; they are aborted",
  suspend: "hold it: nothing below it is submitted",
  resume: "release the hold",
};

export interface OperationsHost {
  status(message: string, error?: boolean): void;
}

interface Shown {
  run: string;
  path: string;
  tryNo: number;
  text: string;
}

export class OperationsPanel {
  private data: api.OpsStatus | null = null;
  private who: api.Me | null = null;
  private timer: number | undefined;
  private round = 0; // a load started before a close (or a newer load) neither draws nor polls again
  private selected: { run: string; path: string } | null = null;
  private readonly runOf = new Map<string, string>(); // suite: the run shown when not the latest
  private output: Shown | null = null;

  constructor(private readonly root: HTMLElement, private readonly host: OperationsHost) {}

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
    this.root.dataset.polling = "false";
  }

  private stop(): void {
    window.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Read the status (and the open output while its task runs), draw it, and ask again in POLL_MS. */
  async load(): Promise<void> {
    this.stop();
    const round = ++this.round;
    let refused = false;
    try {
      if (!this.who?.signed_in) this.who = await api.me();
      if (!mayOperate(this.who)) {
        refused = true;
        if (round === this.round) this.message("Operations are for admins and the operators group.");
        return;
      }
      const found = await api.opsStatus();
      const shown = this.output;
      const node = shown ? findNode(found, shown.run, shown.path) : null;
      if (shown && node && BUSY.has(node.state)) { // a running try's output grows: follow it
        this.output = { ...shown, tryNo: node.try, text: await api.opsOutput(shown.run, shown.path, node.try) };
      }
      if (round !== this.round) return;
      this.data = found;
      this.render();
    } catch (error) {
      if (round !== this.round) return;
      refused = error instanceof api.Refused;
      if (refused) {
        this.who = null; // signed out, or no longer an operator: ask who it is next time
        this.message((error as Error).message);
      }
      else this.host.status(`operations: ${(error as Error).message}`, true);
    } finally {
      if (round === this.round && this.isOpen && !refused) {
        this.timer = window.setTimeout(() => void this.load(), POLL_MS);
      }
      if (round === this.round) this.root.dataset.polling = String(this.timer !== undefined);
    }
  }

  private body(): HTMLElement {
    return this.root.querySelector<HTMLElement>(".ops-body")!;
  }

  private message(text: string): void {
    this.body().replaceChildren(el("p", { className: "hint", textContent: text }));
  }

  private render(): void {
    const data = this.data;
    if (!data) return;
    const scroll = this.root.scrollTop;
    const pre = this.body().querySelector<HTMLElement>(".ops-output");
    const preScroll = pre ? { top: pre.scrollTop, atEnd: pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4 } : null;
    if (this.selected && !findNode(data, this.selected.run, this.selected.path)) this.selected = null;
    const runner = el("p", {
      className: `ops-runner${data.runner.active ? "" : " error"}`,
      textContent: data.runner.active ? `Runner: active (${data.runner.holder ?? ""})`
                                      : "Runner: not running (no runner holds the lease: start `cubeport ops run`)",
    });
    runner.dataset.active = String(data.runner.active);
    this.body().replaceChildren(
      runner,
      section("Watchers", this.watchers(data.watchers)),
      section("Suites", ...data.suites.map((s) => this.suite(s))),
      section("Last 24 h (UTC)", timeline(data, this.body().clientWidth || 800)),
      section("Deliveries", this.deliveries(data)),
    );
    this.root.scrollTop = scroll;
    const shown = this.body().querySelector<HTMLElement>(".ops-output");
    if (shown) shown.scrollTop = !preScroll || preScroll.atEnd ? shown.scrollHeight : preScroll.top;
  }

  private watchers(watchers: api.OpsWatcher[]): HTMLElement {
    if (!watchers.length) return hint("No watchers (cubeport watch add, or POST /ops/watchers).");
    return table(["watcher", "url", "suite", "last look (UTC)", "last file", "files", "problem"], watchers.map((w) => {
      const problem = w.paused ? `paused: ${w.paused}` : w.last_error ?? "";
      const row = el("tr", {}, [
        td(w.name), td(w.url), td(w.suite), td(when(w.last_look)), td(w.last_file ?? ""), td(String(w.files)),
        el("td", { className: problem ? "error" : "", textContent: problem }),
      ]);
      Object.assign(row.dataset, { watcher: w.name, problem: String(!!problem) });
      return row;
    }), "ops-watchers");
  }

  /** A suite: its latest run (or a chosen recent one) as an indented tree, and the selected node's tools. */
  private suite(suite: api.OpsSuite): HTMLElement {
    const box = el("div", { className: "ops-suite" });
    box.dataset.suite = suite.name;
    const every = suite.schedule.every ? `every ${suite.schedule.every} s` : suite.schedule.cron ? `cron ${suite.schedule.cron}` : "";
    const head = el("div", { className: "chart-tools" }, [
      el("strong", { textContent: suite.name }),
      el("span", { className: "hint", textContent: [suite.title, every].filter(Boolean).join(" · ") }),
      el("span", { className: "spacer" }),
    ]);
    box.append(head);
    if (!suite.runs.length) {
      box.append(hint("No runs yet."));
      return box;
    }
    const run = suite.runs.find((r) => r.id === this.runOf.get(suite.name)) ?? suite.runs[0];
    if (suite.runs.length > 1) {
      const pick = el("select", { className: "ops-run", title: "which run to show" });
      for (const r of suite.runs) {
        pick.append(el("option", { value: r.id, textContent: `${when(r.created)} · ${r.cause} · ${r.tree.state}` }));
      }
      pick.value = run.id;
      pick.addEventListener("change", () => {
        this.runOf.set(suite.name, pick.value);
        this.render();
      });
      head.append(pick);
    } else {
      head.append(el("span", { className: "hint", textContent: `${when(run.created)} · ${run.cause}` }));
    }
    const rows: HTMLElement[] = [];
    const chosen: api.OpsNode[] = [];
    const visit = (node: api.OpsNode, depth: number): void => {
      const isSelected = this.selected?.run === run.id && this.selected.path === node.path;
      if (isSelected) chosen.push(node);
      rows.push(this.nodeRow(run, node, depth, isSelected));
      for (const child of node.children) visit(child, depth + 1);
    };
    visit(run.tree, 0);
    box.append(table(["node", "state", "try", "took", "reason"], rows, "ops-tree"));
    if (chosen.length) box.append(this.tools(run, chosen[0]));
    return box;
  }

  private nodeRow(run: api.OpsRun, node: api.OpsNode, depth: number, selected: boolean): HTMLElement {
    const name = node.path.split("/").pop() || node.path;
    const label = el("td", { className: `ops-name ${node.kind}` }, [node.kind === "family" ? `${name}/` : name]);
    label.style.paddingLeft = `${6 + depth * 16}px`;
    const state = el("td", {}, [badge(node.state)]);
    if (node.suspended) state.append(" ", el("span", { className: "badge suspended", textContent: "suspended" }));
    const row = el("tr", { className: selected ? "selected" : "", title: "select for its actions and output" }, [
      label, state, td(node.kind === "task" && node.try ? `${node.try}/${node.tries}` : ""), td(took(node.seconds)),
      el("td", { className: `ops-reason${node.state === "aborted" ? " error" : ""}`, textContent: node.reason }),
    ]);
    Object.assign(row.dataset, { run: run.id, path: node.path, state: node.state, kind: node.kind,
                                 suspended: String(node.suspended) });
    row.addEventListener("click", () => {
      this.selected = selected ? null : { run: run.id, path: node.path };
      this.render();
    });
    return row;
  }

  /** The selected node's action buttons, and for a task that has run its output of each try. */
  private tools(run: api.OpsRun, node: api.OpsNode): HTMLElement {
    const box = el("div", { className: "ops-tools" });
    box.dataset.path = node.path;
    const buttons = el("div", { className: "chart-tools" }, [el("strong", { textContent: node.path })]);
    for (const action of actionsFor(node)) {
      const button = el("button", { className: "ops-action", textContent: action, title: HINTS[action] });
      button.dataset.action = action;
      button.addEventListener("click", () => void this.act(run.id, node.path, action, box));
      buttons.append(button);
    }
    if (node.kind === "task" && node.try > 0) {
      buttons.append(el("span", { className: "spacer" }), "output:");
      for (let tryNo = 1; tryNo <= node.try; tryNo++) {
        const show = el("button", { className: "ops-output-show", textContent: `try ${tryNo}` });
        show.dataset.try = String(tryNo);
        show.addEventListener("click", () => void this.show(run.id, node.path, tryNo));
        buttons.append(show);
      }
    }
    box.append(buttons);
    const out = this.output;
    if (out && out.run === run.id && out.path === node.path) {
      const pre = el("pre", { className: "ops-output", textContent: out.text || "(no output)" });
      pre.dataset.try = String(out.tryNo);
      box.append(pre);
    }
    return box;
  }

  private async act(run: string, path: string, action: api.OpsAction, box: HTMLElement): Promise<void> {
    for (const button of box.querySelectorAll<HTMLButtonElement>("button.ops-action")) button.disabled = true;
    try {
      if (!this.who) throw new api.ApiError("sign in again to act on a node");
      await api.opsAct(run, path, action, this.who);
      this.host.status(`${action}: ${path}`);
    } catch (error) {
      this.host.status(`${action} ${path}: ${(error as Error).message}`, true);
    }
    await this.load();
  }

  private async show(run: string, path: string, tryNo: number): Promise<void> {
    try {
      const text = await api.opsOutput(run, path, tryNo);
      this.output = { run, path, tryNo, text };
      this.render();
    } catch (error) {
      this.host.status(`output of ${path}: ${(error as Error).message}`, true);
    }
  }

  private deliveries(data: api.OpsStatus): HTMLElement {
    const targets = data.targets.length
      ? el("p", { className: "hint", textContent: `Targets: ${data.targets.map((t) => `${t.name} (${t.products.join(", ")})`).join("; ")}` })
      : hint("No delivery targets (cubeport targets add, or POST /ops/targets).");
    if (!data.deliveries.length) return el("div", {}, [targets, hint("No deliveries yet.")]);
    const rows = data.deliveries.map((d) => {
      const failed = d.state === "failed" || !!d.error;
      const row = el("tr", {}, [
        td(d.product), td(d.target),
        el("td", { className: failed ? "error" : "", textContent: d.state }),
        td(String(d.attempts)), td(when(d.delivered ?? d.created)),
        el("td", { className: failed ? "error" : "", textContent: d.error ?? "" }),
      ]);
      Object.assign(row.dataset, { delivery: String(d.id), target: d.target, state: d.state });
      return row;
    });
    return el("div", {}, [targets, table(["product", "target", "state", "attempts", "time (UTC)", "error"], rows,
                                         "ops-deliveries")]);
  }
}

function findNode(data: api.OpsStatus, run: string, path: string): api.OpsNode | null {
  const find = (node: api.OpsNode): api.OpsNode | null =>
    node.path === path ? node : node.children.map(find).find((n) => n) ?? null;
  for (const suite of data.suites) {
    const found = suite.runs.find((r) => r.id === run);
    if (found) return find(found.tree);
  }
  return null;
}

/** Task tries of the last 24 h (up to the server's time): a row per task path, a bar per try from its start to
 * its end (or now), coloured by its state; a bar is at least 3 px wide so a try of seconds still shows. */
function timeline(data: api.OpsStatus, width: number): Element {
  if (!data.timeline.length) return hint("No task ran in the last 24 hours.");
  const paths = [...new Set(data.timeline.map((t) => t.path))];
  const label = Math.min(220, width * 0.3);
  const plot = Math.max(100, width - label - 10);
  const row = 18;
  const top = 20;
  const end = Date.parse(data.time);
  const start = end - WINDOW_MS;
  const x = (t: number) => label + ((Math.min(Math.max(t, start), end) - start) / WINDOW_MS) * plot;
  const svg = svgEl("svg", { class: "ops-timeline", width: String(label + plot + 10),
                             height: String(top + paths.length * row + 4), role: "img",
                             "aria-label": "task tries of the last 24 hours" });
  for (let hour = Math.ceil(start / (3 * HOUR_MS)) * 3 * HOUR_MS; hour <= end; hour += 3 * HOUR_MS) {
    const at = x(hour);
    svg.append(svgEl("line", { class: "tick", x1: String(at), x2: String(at), y1: "14", y2: String(top + paths.length * row) }));
    const text = svgEl("text", { x: String(at), y: "11", "text-anchor": "middle" });
    text.textContent = new Date(hour).toISOString().slice(11, 16);
    svg.append(text);
  }
  paths.forEach((path, index) => {
    const name = svgEl("text", { x: String(label - 6), y: String(top + index * row + 13), "text-anchor": "end" });
    name.textContent = path;
    svg.append(name);
  });
  for (const t of data.timeline) {
    const from = x(Date.parse(t.started));
    const to = x(t.ended ? Date.parse(t.ended) : end);
    const bar = svgEl("rect", { class: `bar state-${t.state}`, x: String(from), y: String(top + paths.indexOf(t.path) * row + 3),
                                width: String(Math.max(3, to - from)), height: String(row - 6) });
    Object.assign((bar as SVGElement).dataset, { path: t.path, state: t.state, run: t.run, try: String(t.try) });
    const title = svgEl("title", {});
    title.textContent = `${t.path} (run ${t.run.slice(0, 8)}) try ${t.try}: ${t.state}, ${when(t.started)} – ${t.ended ? when(t.ended) : "now"}`;
    bar.append(title);
    svg.append(bar);
  }
  return svg;
}

function badge(state: api.NodeState): HTMLElement {
  return el("span", { className: `badge state-${state}`, textContent: state });
}

function section(title: string, ...content: (Node | string)[]): HTMLElement {
  return el("section", { className: "ops-section" }, [el("h3", { textContent: title }), ...content]);
}

function table(headers: string[], rows: HTMLElement[], className: string): HTMLElement {
  return el("table", { className: `ops-table ${className}` }, [
    el("thead", {}, [el("tr", {}, headers.map((h) => el("th", { textContent: h })))]),
    el("tbody", {}, rows),
  ]);
}

function td(text: string): HTMLElement {
  return el("td", { textContent: text });
}

function hint(text: string): HTMLElement {
  return el("p", { className: "hint", textContent: text });
}

function when(time: string | null): string {
  return time ? time.replace("T", " ").slice(0, 19) : "";
}

function took(seconds: number | null): string {
  if (seconds == null) return "";
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return seconds < 7200 ? `${(seconds / 60).toFixed(1)} min` : `${(seconds / 3600).toFixed(1)} h`;
}

function svgEl(tag: string, attributes: Record<string, string>): SVGElement {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {},
                                                   children: (Node | string)[] = []): HTMLElementTagNameMap[K] {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}
