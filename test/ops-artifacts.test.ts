// What operators deploy next to the code: the Prometheus rules, the Grafana
// dashboard, the compose example and the Dockerfile. Checked statically,
// and every metric they name against what the running daemon exports on
// /metrics, so a metric renamed in code fails here.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config.js';
import { ALERT_SERIES } from '../src/metrics/alert-series.js';
import { DASHBOARD_SERIES } from '../src/metrics/dashboard-series.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';

const RULES = 'docs/ops/prometheus-rules.yaml';
const RULE_TESTS = 'docs/ops/prometheus-rules.test.yaml';
const DASHBOARD = 'docs/ops/grafana-dashboard.json';
const COMPOSE = 'docs/deploy/compose.yaml';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description?: string; runbook: string };
}
const rules = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
const dashboardExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));

/** Metric names in a PromQL expression: identifiers not followed by "(" that are not keywords, labels or functions. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const withoutGrouping = withoutStrings.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = withoutGrouping.match(/\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()/g) ?? [];
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'e']);
  return [...new Set(names.filter((n) => !keywords.has(n.toLowerCase()) && !/^\d/.test(n)))];
}

function balanced(expr: string): boolean {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: string[] = [];
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '')) {
    if ('([{'.includes(ch)) stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0;
}

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
let exported: Set<string>;
let scrape: string;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url);
  const text = await fetch(`http://127.0.0.1:${daemon.port}/metrics`).then((r) => r.text());
  scrape = text;
  exported = new Set(['up']); // Prometheus's own series for every scrape target
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\w+)/.exec(line);
    if (!m) continue;
    exported.add(m[1]!);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1]! + s);
    if (m[2] === 'summary') for (const s of ['_sum', '_count']) exported.add(m[1]! + s);
  }
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

describe('Prometheus rules', () => {
  it('keep the four deployed alerts with their names and meaning, and add the reactor alerts', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    assert.equal(byName.get('ManaAIServiceDown')?.expr.trim(), 'up{job="mana-ai"} == 0');
    assert.equal(byName.get('ManaAIServiceDown')?.for, '2m');
    assert.equal(byName.get('ManaAIGrantScopeViolation')?.expr.trim(), 'increase(mana_ai_grant_scope_violations_total[5m]) > 0');
    assert.equal(byName.get('ManaAIGrantScopeViolation')?.labels.severity, 'critical');
    assert.match(byName.get('ManaAIGrantSkipsHigh')!.expr, /rate\(mana_ai_grant_skips_total\{reason!="expired"\}\[5m\]\)\) > 0\.1/);
    assert.equal(byName.get('ManaAIGrantSkipsHigh')?.for, '15m');
    assert.match(byName.get('ManaAIPlannerParseFailures')!.expr, /mana_ai_parse_failures_total[\s\S]*> 0\.2/);
    assert.equal(byName.get('ManaAIPlannerParseFailures')?.for, '10m');
    assert.match(byName.get('ManaAIListenerDisconnected')!.expr, /mana_ai_listener_connected == 0/);
    assert.equal(byName.get('ManaAIListenerDisconnected')?.for, '1m');
    assert.match(byName.get('ManaAIDueLagHigh')!.expr, /histogram_quantile\(0\.99, .*mana_ai_due_lag_seconds_bucket.*\) > 5/);
    assert.equal(byName.get('ManaAIDueLagHigh')?.for, '10m');
    assert.match(byName.get('ManaAIRunsFailing')!.expr, /mana_ai_runs_total/);
    assert.match(byName.get('ManaAISnapshotErrorsGrowing')!.expr, /increase\(mana_ai_snapshot_errors_total\[15m\]\)/);
  });

  it('are well-formed: balanced expressions, valid durations, a severity, a summary and a runbook anchor that exists', () => {
    const ops = readFileSync('docs/ops.md', 'utf8');
    const anchors = new Set([...ops.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, '').trim().replace(/\s+/g, '-')));
    assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique');
    for (const r of rules) {
      assert.ok(balanced(r.expr), `${r.alert}: brackets balance`);
      if (r.for !== undefined) assert.match(r.for, /^\d+[smhd]$/, `${r.alert}: for`);
      assert.ok(['critical', 'warning'].includes(r.labels.severity), `${r.alert}: severity`);
      assert.ok(r.annotations.summary.length > 10, `${r.alert}: summary`);
      const anchor = /^docs\/ops\.md#([a-z0-9-]+)$/.exec(r.annotations.runbook)?.[1];
      assert.ok(anchor && anchors.has(anchor), `${r.alert}: runbook ${r.annotations.runbook} is a heading in docs/ops.md`);
    }
  });

  it('pass promtool check and promtool\'s unit tests (every alert fires and stays quiet where it must)', (t) => {
    const which = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (which.error) {
      t.skip('promtool is not installed (.ci/run installs Debian\'s prometheus package); the parsing checks above stand in for it');
      return;
    }
    const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const unit = spawnSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8' });
    assert.equal(unit.status, 0, unit.stdout + unit.stderr);
    assert.match(unit.stdout + unit.stderr, /SUCCESS/);
  });

  it('have a unit test that fires and one that stays quiet for every alert', () => {
    const tests = (parseYaml(readFileSync(RULE_TESTS, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests;
    const checks = tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const r of rules) {
      assert.ok(checks.some((c) => c.alertname === r.alert && c.exp_alerts.length > 0), `${r.alert}: a test where it fires`);
      assert.ok(checks.some((c) => c.alertname === r.alert && c.exp_alerts.length === 0), `${r.alert}: a test where it stays quiet`);
    }
  });

  it('read only series a freshly started daemon already exports, labelled counters at 0 for every known label value', () => {
    const samples = new Map<string, number>();
    for (const line of scrape.split('\n')) {
      const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (m) samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
    }
    const seriesOf = (name: string) => [...samples].filter(([k]) => k === name || k.startsWith(`${name}{`));
    for (const r of rules) {
      for (const name of metricNames(r.expr)) {
        if (name === 'up') continue; // Prometheus's own series
        assert.ok(seriesOf(name).length > 0, `${r.alert}: ${name} is exported before its first event`);
      }
    }
    for (const [name, labels] of Object.entries(ALERT_SERIES)) {
      for (const [label, values] of Object.entries(labels)) {
        for (const value of values as readonly string[]) {
          const hit = seriesOf(name).find(([k]) => k.includes(`${label}="${value}"`));
          assert.ok(hit, `${name}{${label}="${value}"} is exported`);
          assert.equal(hit[1], 0, `${name}{${label}="${value}"} starts at 0`);
        }
      }
    }
    // the alerts' own label values are among them
    assert.ok(ALERT_SERIES.mana_ai_runs_total.outcome.includes('failed') && ALERT_SERIES.mana_ai_runs_total.outcome.includes('error'));
    assert.ok(ALERT_SERIES.mana_ai_grant_scope_violations_total.table.includes('notes'));
    assert.equal(samples.get('mana_ai_parse_failures_total{service="mana-ai"}'), 0);
    assert.equal(samples.get('mana_ai_snapshot_errors_total{service="mana-ai"}'), 0);
  });
});

describe('Grafana dashboard', () => {
  it('every metric and label set a panel reads is exported by a fresh daemon, labelled series at 0 for every known label value (issue 20)', () => {
    const series: { name: string; labels: Map<string, string>; value: number }[] = [];
    for (const line of scrape.split('\n')) {
      const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
      if (!m) continue;
      const labels = new Map<string, string>();
      for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels.set(l[1]!, l[2]!);
      series.push({ name: m[1]!, labels, value: Number(m[3]) });
    }
    const problems: string[] = [];
    for (const e of dashboardExprs) {
      const by = [...e.matchAll(/by \(([^)]*)\)/g)].flatMap((b) => b[1]!.split(',').map((x) => x.trim())).filter((l) => l && l !== 'le' && l !== 'instance');
      for (const name of metricNames(e)) {
        if (name === 'up') continue;
        const ofName = series.filter((x) => x.name === name);
        if (ofName.length === 0) problems.push(`${name} has no series (${e})`);
        else if (by.length && !ofName.some((x) => by.every((l) => x.labels.has(l)))) problems.push(`${name} has no series with ${by.join(', ')} (${e})`);
      }
    }
    assert.deepEqual(problems, []);
    for (const [name, labels] of Object.entries(DASHBOARD_SERIES)) {
      const isHistogram = series.some((x) => x.name === `${name}_bucket`);
      for (const [label, values] of Object.entries(labels)) {
        for (const value of values as readonly string[]) {
          const hit = series.find((x) => x.name === (isHistogram ? `${name}_count` : name) && x.labels.get(label) === value);
          assert.ok(hit, `${name}{${label}="${value}"} is exported`);
          // a fresh daemon has resynced and rebalanced once at start; nothing else has happened yet
          const atStart = (name === 'mana_ai_resyncs_total' || name === 'mana_ai_rebalances_total') && value === 'start';
          if (!atStart) assert.equal(hit.value, 0, `${name}{${label}="${value}"} starts at 0`);
        }
      }
    }
    // the series the issue names
    for (const name of ['mana_ai_mission_errors_total', 'mana_ai_llm_retries_total', 'mana_ai_missions_skipped_total', 'mana_ai_agent_decisions_total']) {
      assert.ok(series.some((x) => x.name === name && x.labels.size > 1), `${name} is there from the start`);
    }
  });


  it('has the panels operators need', () => {
    const all = dashboardExprs.join('\n');
    for (const metric of [
      'mana_ai_plans_produced_total', 'mana_ai_parse_failures_total', 'mana_ai_mission_errors_total', 'mana_ai_due_lag_seconds_bucket',
      'mana_ai_missions_scheduled', 'mana_ai_runs_in_flight', 'mana_ai_planner_request_duration_seconds_bucket',
      'mana_ai_grant_scope_violations_total', 'mana_ai_grant_skips_total',
    ]) assert.ok(all.includes(metric), `a panel shows ${metric}`);
    assert.ok(dashboard.panels.some((p) => /skips/i.test(p.title) && p.targets.some((t) => /by \(reason\)/.test(t.expr))), 'grant skips by reason');
    for (const e of dashboardExprs) assert.ok(balanced(e), e);
  });
});

describe('metric names', () => {
  it('every metric in the rules and the dashboard is one the daemon exports', () => {
    const used = new Map<string, string>();
    for (const r of rules) for (const n of metricNames(r.expr)) used.set(n, `rule ${r.alert}`);
    for (const e of dashboardExprs) for (const n of metricNames(e)) used.set(n, `dashboard: ${e}`);
    assert.ok(used.size >= 15, `found the metric names (${used.size})`);
    const unknown = [...used].filter(([n]) => !exported.has(n)).map(([n, where]) => `${n} (${where})`);
    assert.deepEqual(unknown, []);
  });

  it('the name check catches a renamed metric', () => {
    assert.deepEqual(metricNames('sum by (le) (rate(mana_ai_due_lag_seconds_bucket{job="x"}[5m])) > 5'), ['mana_ai_due_lag_seconds_bucket']);
    assert.ok(!exported.has('mana_ai_due_lag_second_bucket'), 'a misspelt name is not exported');
  });
});

describe('deployment files', () => {
  it('the compose example runs mana-ai with the deployed variable names, 256m and a grace longer than the daemon’s', () => {
    const compose = parseYaml(readFileSync(COMPOSE, 'utf8')) as { services: Record<string, { mem_limit?: string; environment?: Record<string, string>; stop_grace_period?: string; depends_on?: unknown; restart?: string }> };
    const svc = compose.services['mana-ai']!;
    assert.equal(svc.mem_limit, '256m');
    assert.equal(svc.restart, 'always');
    const env = Object.keys(svc.environment ?? {});
    for (const name of ['PORT', 'SYNC_DATABASE_URL', 'MANA_LLM_URL', 'MANA_SERVICE_KEY', 'MANA_AI_PRIVATE_KEY_PEM', 'MANA_AUTH_URL', 'JWT_AUDIENCE', 'JWT_ISSUER', 'TICK_ENABLED', 'TZ']) {
      assert.ok(env.includes(name), `compose sets ${name}`);
    }
    assert.equal(svc.environment!['PORT'], String(loadConfig({ SYNC_DATABASE_URL: 'postgres://x/y', MANA_LLM_URL: 'http://l' }).port));
    const grace = Number(/^(\d+)s$/.exec(svc.stop_grace_period ?? '')?.[1]);
    assert.ok(grace * 1000 > loadConfig({ SYNC_DATABASE_URL: 'postgres://x/y', MANA_LLM_URL: 'http://l' }).shutdownGraceMs, 'stop_grace_period exceeds the shutdown grace');
    assert.ok(compose.services['postgres'] && svc.depends_on, 'runs next to a Postgres it waits for');
  });

  it('the Dockerfile: pinned Node LTS base, production-only runtime, non-root, port and health check agree with the default port', () => {
    const text = readFileSync('Dockerfile', 'utf8');
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const froms = lines.filter((l) => l.startsWith('FROM '));
    assert.equal(froms.length, 2, 'multi-stage: build and runtime');
    for (const f of froms) {
      const tag = /^FROM node:(\d+)\.(\d+)(?:\.\d+)?-[a-z]+-slim\b/.exec(f);
      assert.ok(tag, `${f}: node image pinned to a release`);
      assert.equal(Number(tag[1]) % 2, 0, `${f}: an even (LTS) major`);
      assert.ok(Number(tag[1]) >= 24, `${f}: a supported LTS line`);
    }
    const runtimeStart = lines.findIndex((l) => / AS runtime$/i.test(l));
    const runtime = lines.slice(runtimeStart);
    assert.ok(runtime.some((l) => /npm ci .*--omit=dev/.test(l)), 'runtime installs production dependencies only');
    assert.ok(!runtime.some((l) => /npm (ci|install)(?!.*--omit=dev)/.test(l)), 'no full install in the runtime stage');
    assert.ok(runtime.some((l) => /^COPY sql /.test(l)), 'sql/ is in the image');
    const user = runtime.find((l) => l.startsWith('USER '));
    assert.ok(user && !/^USER (root|0)(:|$)/.test(user), 'runs as a non-root user');
    assert.ok(runtime.indexOf(user!) < runtime.findIndex((l) => l.startsWith('CMD ')), 'USER before CMD');
    const port = loadConfig({ SYNC_DATABASE_URL: 'postgres://x/y', MANA_LLM_URL: 'http://l' }).port;
    assert.ok(runtime.includes(`EXPOSE ${port}`), `EXPOSE ${port}`);
    const health = text.slice(text.indexOf('HEALTHCHECK'));
    assert.match(health, /\/health/);
    assert.ok(health.includes(`process.env.PORT||${port}`), 'the health check asks the configured port, default the same');
    assert.ok(!/curl|wget/.test(health.split('\n').slice(0, 3).join('\n')), 'no extra binary for the health check');
    assert.match(lines.filter((l) => l.startsWith('CMD ')).at(-1)!, /^CMD \["node", "--max-semi-space-size=2", "dist\/main\.js"\]$/, 'exec form: SIGTERM reaches node; the same flags as npm start');
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts['start'], 'node --max-semi-space-size=2 dist/main.js', 'the image runs what npm start runs');
  });
});
