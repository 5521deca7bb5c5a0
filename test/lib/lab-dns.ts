// The lab's DNS: the zone server (dns-zone-server.ts) on 127.0.0.1:53 inside the lab's
// namespace, which every process there uses through /etc/netns/<ns>/resolv.conf.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { QueryLogEntry } from './dns-zone-server.js';
import { HEALTH_NAME } from './dns-zone-server.js';
import type { Lab } from './lab.js';
import type { LabProcess } from './lab-process.js';
import { distHelper, NODE } from './project.js';
import { PROBE_SRC } from './smtpd.js';
import { canonicalName, reverseName, type RecordType, type Zone } from './zone.js';

export class LabDns {
  readonly zoneFile: string;
  readonly logFile: string;
  proc!: LabProcess;
  private generation = 0;
  /** queries() starts at this byte of the log */
  private since = 0;

  constructor(readonly lab: Lab, public zone: Zone) {
    this.zoneFile = join(lab.wd, 'dns-zone.json');
    this.logFile = join(lab.wd, 'dns-queries.jsonl');
  }

  static async start(lab: Lab, zone: Zone): Promise<LabDns> {
    const dns = new LabDns(lab, zone);
    writeFileSync(dns.zoneFile, JSON.stringify(zone));
    writeFileSync(dns.logFile, '');
    dns.proc = lab.spawn([NODE, distHelper('dns-zone-server'), '--zone', dns.zoneFile, '--log', dns.logFile],
      { logFile: join(lab.wd, 'dns-server.log') });
    await dns.proc.waitFor(/"listening":\d+/, 10_000);
    await dns.waitAnswering();
    return dns;
  }

  /** Ask the health name through the namespace's resolv.conf, as any client there would. */
  private async waitAnswering(): Promise<void> {
    const script = `require('node:dns').promises.resolveTxt(${JSON.stringify(HEALTH_NAME)})` +
      '.then((r) => process.exit(r[0][0] === "ok" ? 0 : 1), () => process.exit(1))';
    for (let i = 0; ; i++) {
      const r = await this.lab.exec([NODE, '-e', script], { timeoutMs: 10_000 });
      if (r.code === 0) return;
      if (i >= 20) throw new Error(`the lab DNS does not answer: ${r.stderr.toString()}\n${this.proc.output()}`);
      await sleep(100);
    }
  }

  /** Replace the zone; resolves once the server has loaded it. */
  async setZone(zone: Zone): Promise<void> {
    this.zone = zone;
    const tmp = this.zoneFile + '.tmp';
    writeFileSync(tmp, JSON.stringify(zone));
    renameSync(tmp, this.zoneFile);
    const gen = ++this.generation;
    const from = this.proc.output().length;
    this.proc.signal('SIGHUP', false);
    await this.proc.waitFor(new RegExp(`"reloaded":${gen}\\b`), 10_000, from);
  }

  /** Queries since start (or since clearQueries), oldest first; without smtpd's PTR
   * lookup of the readiness probe's address (smtpd.ts PROBE_SRC). */
  queries(): QueryLogEntry[] {
    const text = readFileSync(this.logFile).subarray(this.since).toString('utf8');
    const probe = reverseName(PROBE_SRC);
    return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as QueryLogEntry)
      .filter((q) => canonicalName(q.name) !== probe);
  }

  clearQueries(): void {
    this.since = readFileSync(this.logFile).length;
  }

  /** The queries for name (any case), optionally of one type. */
  asked(name: string, type?: RecordType): QueryLogEntry[] {
    const n = canonicalName(name);
    return this.queries().filter((q) => canonicalName(q.name) === n && (!type || q.type === type));
  }

  async stop(): Promise<void> {
    await this.proc.stop(2000);
  }
}
