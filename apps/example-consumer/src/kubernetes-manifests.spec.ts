/**
 * The Kubernetes example (deploy/kubernetes/) against the example app: the manifests parse, the probes call the
 * paths HealthController serves on the port the app listens on, the preStop hook drains through the app's drain
 * route, the grace period outlasts the app's shutdown timeout, and KEDA watches the stream and group the app reads.
 */
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { StreamKeys } from '../../../libs/redis-streams-enterprise/src/connection/stream-keys.js';
import { consumerConfigFromEnv, httpPortFromEnv } from './consumer.config.js';
import { HEALTH_PATHS, HealthController } from './health.controller.js';
import { ORDERS_CREATED } from './orders.contracts.js';

const DIR = fileURLToPath(new URL('../../../deploy/kubernetes/', import.meta.url));

/** A parsed manifest: plain YAML data, walked by the assertions. */
type Doc = Record<string, any>;

function manifests(): Doc[] {
  const docs: Doc[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(DIR, file), 'utf8'))) {
      expect({ file, errors: doc.errors.map((e) => e.message) }).toEqual({ file, errors: [] });
      docs.push(doc.toJS() as Doc);
    }
  }
  return docs;
}

/** The HTTP route of a HealthController method: `GET /health/live`. */
function route(method: keyof HealthController): string {
  const base = Reflect.getMetadata(PATH_METADATA, HealthController) as string;
  const handler = HealthController.prototype[method] as object;
  const verb = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number];
  return `${verb} /${base}/${Reflect.getMetadata(PATH_METADATA, handler) as string}`;
}

describe('deploy/kubernetes', () => {
  const docs = manifests();
  const deployment = docs.find((d) => d.kind === 'Deployment')!;
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const env = (name: string) => container.env.find((e: Doc) => e.name === name);

  it('parses, with a Deployment, a PodDisruptionBudget, a KEDA ScaledObject and its TriggerAuthentication', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'PodDisruptionBudget', 'ScaledObject', 'TriggerAuthentication']);
  });

  it('probes the routes HealthController serves, on the port the app listens on', () => {
    expect([route('live'), route('ready'), route('drain')]).toEqual([`GET ${HEALTH_PATHS.live}`, `GET ${HEALTH_PATHS.ready}`, `POST ${HEALTH_PATHS.drain}`]);
    const port = container.ports.find((p: Doc) => p.name === 'http');
    expect(port.containerPort).toBe(httpPortFromEnv({ PORT: env('PORT').value }));
    expect(container.livenessProbe.httpGet).toEqual({ path: HEALTH_PATHS.live, port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: HEALTH_PATHS.ready, port: 'http' });
    expect(container.startupProbe.httpGet).toEqual({ path: HEALTH_PATHS.live, port: 'http' });
    // The liveness probe waits longer than the indicator's own Redis timeout (3 s).
    expect(container.livenessProbe.timeoutSeconds).toBeGreaterThan(3);
  });

  it('drains in preStop through the drain route, within a grace period well above the shutdown timeout', () => {
    const preStop = (container.lifecycle.preStop.exec.command as string[]).join(' ');
    expect(preStop).toContain(`http://127.0.0.1:${env('PORT').value}${HEALTH_PATHS.drain}`);
    expect(preStop).toContain("method:'POST'");
    const shutdownTimeoutMs = consumerConfigFromEnv({}).consumer!.shutdownTimeoutMs!;
    // Drain (up to shutdownTimeoutMs), then close's bounded steps and the connections' quit.
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(3 * shutdownTimeoutMs);
  });

  it('scales with KEDA on the lag of the stream and group the app consumes', () => {
    const config = consumerConfigFromEnv({ RSE_KEY_PREFIX: env('RSE_KEY_PREFIX').value });
    const trigger = docs.find((d) => d.kind === 'ScaledObject')!.spec.triggers[0];
    expect(trigger.type).toBe('redis-streams');
    expect(trigger.metadata.stream).toBe(new StreamKeys(config.streams!.keyPrefix!).stream(ORDERS_CREATED));
    expect(trigger.metadata.consumerGroup).toBe(config.consumer!.group);
    expect(Number(trigger.metadata.lagCount)).toBeGreaterThan(0);
    expect(docs.find((d) => d.kind === 'ScaledObject')!.spec.scaleTargetRef.name).toBe(deployment.metadata.name);
  });
});
