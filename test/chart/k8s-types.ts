// The few Kubernetes shapes the chart tests look into (a narrow view of the
// API types: only the fields the tests read).
import type { ManifestObject } from '../helpers/manifests.ts';

export interface Capabilities {
  add?: string[];
  drop?: string[];
}

export interface SecurityContext {
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  capabilities?: Capabilities;
  seccompProfile?: { type: string };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  mountPropagation?: string;
}

export interface Probe {
  httpGet?: { path: string; port: string | number };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: SecurityContext;
  volumeMounts?: VolumeMount[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
  projected?: { sources: { serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string } }[] };
  [other: string]: unknown;
}

export interface PodSpec {
  serviceAccountName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  shareProcessNamespace?: boolean;
  dnsPolicy?: string;
  securityContext?: SecurityContext;
  tolerations?: { operator?: string; key?: string }[];
  nodeSelector?: Record<string, string>;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
}

export interface Workload extends ManifestObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface RoleObject extends ManifestObject {
  rules: PolicyRule[];
}

export interface BindingObject extends ManifestObject {
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects: { kind: string; name: string; namespace?: string }[];
}

export interface ConfigMapObject extends ManifestObject {
  data: Record<string, string>;
}

export const asWorkload = (o: ManifestObject): Workload => o as Workload;
export const asRole = (o: ManifestObject): RoleObject => o as RoleObject;
export const asBinding = (o: ManifestObject): BindingObject => o as BindingObject;
export const asConfigMap = (o: ManifestObject): ConfigMapObject => o as ConfigMapObject;
