/** How the report and the CLI name a metric and its unit (shared/data/metrics.ts). */
import type { MetricName } from '../data/metrics';

export interface MetricLabels {
  metric: MetricName;
  /** In a sentence: "top-1", "output SQNR". */
  name: string;
  /** A table column: "top-1 %", "SQNR dB". */
  column: string;
  /** A chart axis: "top-1 (%)", "output SQNR (dB)". */
  axis: string;
  /** The value with its unit: "88.6 %", "31.2 dB", "0.998". */
  format(value: number, digits?: number): string;
  /** "FP32 top-1 88.6% on validation, ..." */
  fp32Sentence(val: string, test: string | null): string;
}

export function metricLabels(metric: MetricName = 'top1'): MetricLabels {
  switch (metric) {
    case 'top1':
      return {
        metric,
        name: 'top-1',
        column: 'top-1 %',
        axis: 'top-1 (%)',
        format: (v, d = 2) => `${v.toFixed(d)} %`,
        fp32Sentence: (val, test) => `FP32 top-1 ${val}% on validation${test === null ? '' : `, ${test}% on the held-out test split`}`,
      };
    case 'sqnr':
      return {
        metric,
        name: 'output SQNR',
        column: 'SQNR dB',
        axis: 'output SQNR vs FP32 (dB)',
        format: (v, d = 2) => `${v.toFixed(d)} dB`,
        fp32Sentence: () => "Scored by the SQNR of the model's outputs against the FP32 model's (dB, higher is better; the FP32 model itself is at the 150 dB cap)",
      };
    case 'cosine':
      return {
        metric,
        name: 'output cosine similarity',
        column: 'cosine',
        axis: 'output cosine similarity vs FP32',
        format: (v, d = 4) => v.toFixed(d),
        fp32Sentence: () => "Scored by the cosine similarity of the model's outputs with the FP32 model's (1 = identical)",
      };
  }
}
