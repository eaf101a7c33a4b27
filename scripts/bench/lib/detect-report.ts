// The detect bench's derived figures (overhead ratio, scaling efficiency), its notes and
// its one-line summary.
import type { BareResult, PipelineResult, ThroughputResult } from './detect-measure.js';
import type { TransportResult } from './detect-transport.js';
import { round } from './stats.js';

export const RATIO_TARGET = 1.1;
export const EFFICIENCY_TARGET = 0.8;

export interface Ratios {
  /** This process's CPU per frame through the pool ÷ bare session.run CPU per run. */
  value: number | null;
  /** The same with ffmpeg's CPU per frame (decode + letterbox) added. */
  withCapture: number | null;
  /** From the same run's per-frame p50s: (assembly + pre + inference + post + event) ÷ inference; insensitive to inference-speed noise between runs. */
  byTimings: number | null;
  definition: string;
}

export function ratios(bare: BareResult, pipe: PipelineResult): Ratios {
  const proc = pipe.cpuMsPerFrame.process;
  const ff = pipe.cpuMsPerFrame.ffmpeg;
  const sp = pipe.splitP50Ms;
  const inf = sp.inferenceMs;
  const parts = [sp.assembly, sp.preprocessMs, inf, sp.postprocessMs, sp.eventMs];
  return {
    value: proc === null ? null : round(proc / bare.cpuMsPerRun, 3),
    withCapture: proc === null || ff === null ? null : round((proc + ff) / bare.cpuMsPerRun, 3),
    byTimings: inf && parts.every((x) => x !== null) ? round((parts as number[]).reduce((a, b) => a + b, 0) / inf, 3) : null,
    definition:
      'pipeline CPU per completed frame of this process (capture read + frame assembly on the main thread, hand-off, ' +
      'preprocess, session.run, postprocess in the worker, result handling) ÷ bare session.run CPU per run (same model, same intraOpThreads, same tensor); ' +
      'withCapture adds the ffmpeg process\'s CPU per frame (JPEG decode + letterbox)',
  };
}

/** Fills each scenario's efficiency: fps ÷ (workers × fps of the fewest-worker run with as many cameras, per worker). */
export function fillEfficiency(runs: ThroughputResult[]): void {
  for (const r of runs) {
    const base = runs.filter((b) => b.cameras === r.cameras).sort((a, b) => a.workers - b.workers)[0];
    if (!base || base.fps === 0) continue;
    r.efficiency = round(r.fps / ((r.workers / base.workers) * base.fps), 3);
  }
}

export function notes(bare: BareResult, pipe: PipelineResult, runs: ThroughputResult[], transport: TransportResult[], r: Ratios, cores: number): string[] {
  const out: string[] = [];
  if (r.value !== null) {
    out.push(
      `overhead ratio ${r.value} (${r.value <= RATIO_TARGET ? 'meets' : 'misses'} ≤ ${RATIO_TARGET}); with ffmpeg's decode + letterbox ${r.withCapture ?? 'n/a'}; ` +
        `from the pipeline's own per-frame timings ${r.byTimings ?? 'n/a'} (CPU ratios also carry any difference in inference speed between the bare and pipeline runs)`,
    );
  }
  const maxW = Math.max(...runs.map((x) => x.workers));
  const worst = runs.filter((x) => x.workers === maxW && x.efficiency !== null).sort((a, b) => a.efficiency! - b.efficiency!)[0];
  if (worst && maxW > 1) {
    out.push(`${maxW} workers: worst efficiency ${worst.efficiency} at ${worst.cameras} camera(s) (${worst.efficiency! >= EFFICIENCY_TARGET ? 'meets' : 'misses'} ≥ ${EFFICIENCY_TARGET})`);
  }
  if (maxW > cores) out.push(`${maxW} workers on ${cores} cores: workers beyond the core count share cores, so efficiency there is capped by the machine`);
  if (maxW >= cores) out.push('at workers = cores the main thread (and ffmpeg, in a real deployment) competes with inference for the same cores');
  if (pipe.frames.dropped > 0) out.push(`pipeline dropped ${pipe.frames.dropped} frames: --fps ${pipe.fps} is more than one worker keeps up with`);
  const shared = transport.find((t) => t.mode === 'shared');
  const moved = transport.find((t) => t.mode === 'transfer');
  const copy = transport.find((t) => t.mode === 'copy');
  if (shared && moved && copy) {
    out.push(
      `frame hand-off round trip p50: shared ${shared.roundTripUsP50} µs, transfer ${moved.roundTripUsP50} µs, copy ${copy.roundTripUsP50} µs ` +
        `(vs ${bare.p50Ms} ms inference): capture reuses SharedArrayBuffers (handed back by DetectorPool.onRelease); the pool also moves whole ArrayBuffers`,
    );
  }
  out.push('throughput scenarios feed one pre-decoded frame (no ffmpeg) so they measure the pool; capture cost is the pipeline\'s captureCpu per frame');
  return out;
}

const ms = (x: number | null, digits = 1) => (x === null ? 'n/a' : x.toFixed(digits));

export function summaryLine(model: string, size: string, bare: BareResult, pipe: PipelineResult, runs: ThroughputResult[], r: Ratios, peakMB: number): string {
  const sp = pipe.splitP50Ms;
  const workers = [...new Set(runs.map((x) => x.workers))].sort((a, b) => a - b);
  const cams = [...new Set(runs.map((x) => x.cameras))].sort((a, b) => a - b);
  const fps = workers.map((w) => {
    const row = cams.map((c) => runs.find((x) => x.workers === w && x.cameras === c)?.fps.toFixed(1) ?? '-');
    const eff = runs.filter((x) => x.workers === w).map((x) => x.efficiency ?? 1);
    return `${w}w ${row.join('/')}${w > workers[0]! ? ` (eff ≥ ${Math.min(...eff).toFixed(2)})` : ''}`;
  });
  return (
    `detect: ${model} ${size}, bare session.run p50 ${ms(bare.p50Ms)} ms (${ms(bare.cpuMsPerRun)} ms CPU)` +
    `; per frame p50: capture ${ms(sp.captureCpu)} ms ffmpeg CPU + ${ms(sp.assembly, 2)} assembly, queue ${ms(sp.queueMs, 2)}, pre ${ms(sp.preprocessMs, 2)}` +
    `, inference ${ms(sp.inferenceMs)}, post ${ms(sp.postprocessMs, 2)}, event ${ms(sp.eventMs, 3)} ms` +
    `; ratio ${r.value ?? 'n/a'} (${r.withCapture ?? 'n/a'} with capture, ${r.byTimings ?? 'n/a'} by timings)` +
    `; fps by cameras ${cams.join('/')}: ${fps.join(', ')}; peak RSS ${Math.round(peakMB)} MB`
  );
}
