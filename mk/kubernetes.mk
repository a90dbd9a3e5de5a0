# driftloop on Kubernetes. Included by the Makefile (-include mk/*.mk).
# Nothing here runs in `make test`: these targets need Docker, kind and a
# cluster. `make -n <target>` shows the exact commands.
#
#   make kind-up          kind cluster + cert-manager, KServe (RawDeployment),
#                         KFP standalone, kube-prometheus-stack with Grafana, whose
#                         sidecar loads every ConfigMap labelled grafana_dashboard=1
#                         (driftloop-dashboards) from any namespace (pinned below)
#   make kind-load        build the images (tag dev) and load them into kind
#   make deploy           generate secrets, kubectl apply -k manifests/overlays/kind
#   make helm-install     the same stack from charts/driftloop instead
#   make port-forward     predictor :8080, MLflow :5000, KFP UI :8088, KFP API :8888, Prometheus :9090,
#                         console :8089, Grafana :3000
#   make pipelines-upload / make pipeline-run NAME=training|retraining
#   make k8s-render       render kustomize overlays and the chart into build/k8s/
#   make kind-down        delete the kind cluster

# --- pinned versions ------------------------------------------------------------
KIND_CLUSTER ?= driftloop
KIND_CONFIG ?= manifests/kind/kind-config.yaml
CERT_MANAGER_VERSION ?= v1.16.3
KSERVE_VERSION ?= v0.20.0
KFP_VERSION ?= 2.17.0
KUBE_PROMETHEUS_STACK_VERSION ?= 77.0.0

# --- images ---------------------------------------------------------------------
IMAGE_REGISTRY ?= ghcr.io/driftloop
IMAGE_TAG ?= 0.1.0
DOCKERFILE := images/Dockerfile
# target in images/Dockerfile -> image name
IMAGE_TARGETS := trainer:driftloop predictor:driftloop-predictor monitor:driftloop-monitor \
	trigger:driftloop-trigger mlflow:driftloop-mlflow
K8S_NAMESPACE ?= driftloop
KFP_NAMESPACE ?= kubeflow
MONITORING_NAMESPACE ?= monitoring
HELM ?= helm
KUBECTL ?= kubectl
KIND ?= kind
DOCKER ?= docker
K8S_BUILD := build/k8s

.PHONY: images kind-load kind-up kind-down k8s-secrets deploy helm-install port-forward \
	pipelines-upload pipeline-run k8s-render

images:
	@if ! $(DOCKER) info >/dev/null 2>&1; then \
	  echo "make images: no Docker engine reachable ($(DOCKER) info failed); skipping the image build"; \
	  exit 0; \
	fi; \
	set -e; for pair in $(IMAGE_TARGETS); do \
	  target=$${pair%%:*}; name=$${pair#*:}; \
	  echo "building $(IMAGE_REGISTRY)/$$name:$(IMAGE_TAG) (target $$target)"; \
	  DOCKER_BUILDKIT=1 $(DOCKER) build -f $(DOCKERFILE) --target $$target \
	    -t $(IMAGE_REGISTRY)/$$name:$(IMAGE_TAG) .; \
	done

# The kind overlay uses driftloop/<name>:dev; the compiled pipelines name the
# trainer image by its release name, so that tag is loaded too.
kind-load:
	$(MAKE) images IMAGE_REGISTRY=driftloop IMAGE_TAG=dev
	$(DOCKER) tag driftloop/driftloop:dev ghcr.io/driftloop/driftloop:$(IMAGE_TAG)
	$(KIND) load docker-image --name $(KIND_CLUSTER) \
	  driftloop/driftloop-predictor:dev driftloop/driftloop-monitor:dev \
	  driftloop/driftloop-trigger:dev driftloop/driftloop-mlflow:dev driftloop/driftloop:dev \
	  ghcr.io/driftloop/driftloop:$(IMAGE_TAG)

kind-up:
	$(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_CONFIG)
	$(HELM) upgrade --install cert-manager cert-manager --repo https://charts.jetstack.io \
	  --version $(CERT_MANAGER_VERSION) --namespace cert-manager --create-namespace \
	  --set crds.enabled=true --wait --timeout 10m
	$(HELM) upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd \
	  --version $(KSERVE_VERSION) --namespace kserve --create-namespace --wait
	$(HELM) upgrade --install kserve oci://ghcr.io/kserve/charts/kserve \
	  --version $(KSERVE_VERSION) --namespace kserve \
	  --set kserve.controller.deploymentMode=RawDeployment --wait --timeout 10m
	$(KUBECTL) apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$(KFP_VERSION)"
	$(KUBECTL) wait --for condition=established --timeout=120s crd/applications.app.k8s.io
	$(KUBECTL) apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$(KFP_VERSION)"
	$(KUBECTL) -n $(KFP_NAMESPACE) wait --for=condition=Available --timeout=15m deployment/ml-pipeline
	$(HELM) upgrade --install kube-prometheus-stack kube-prometheus-stack \
	  --repo https://prometheus-community.github.io/helm-charts \
	  --version $(KUBE_PROMETHEUS_STACK_VERSION) \
	  --namespace $(MONITORING_NAMESPACE) --create-namespace \
	  --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
	  --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
	  --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
	  --set-json 'alertmanager.alertmanagerSpec.alertmanagerConfigSelector={}' \
	  --set-json 'alertmanager.alertmanagerSpec.alertmanagerConfigNamespaceSelector={}' \
	  --set grafana.enabled=true \
	  --set grafana.sidecar.dashboards.enabled=true \
	  --set grafana.sidecar.dashboards.label=grafana_dashboard \
	  --set-string grafana.sidecar.dashboards.labelValue=1 \
	  --set grafana.sidecar.dashboards.searchNamespace=ALL \
	  --wait --timeout 10m

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# Random credentials into manifests/base/secrets/*.env (gitignored); kept if present.
k8s-secrets:
	$(PYTHON) scripts/generate_k8s_secrets.py manifests/base/secrets

deploy: k8s-secrets
	$(KUBECTL) apply --server-side -k manifests/overlays/kind
	$(KUBECTL) -n $(K8S_NAMESPACE) rollout status statefulset/driftloop-postgres --timeout=5m
	$(KUBECTL) -n $(K8S_NAMESPACE) rollout status deployment/driftloop-mlflow --timeout=5m
	$(KUBECTL) -n $(K8S_NAMESPACE) rollout status deployment/driftloop-trigger --timeout=5m

# The chart does not own the namespace (a release is stored inside it); create
# it with the same Pod Security labels the kustomize Namespace carries.
helm-install:
	$(KUBECTL) create namespace $(K8S_NAMESPACE) --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) label namespace $(K8S_NAMESPACE) --overwrite app.kubernetes.io/part-of=driftloop \
	  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted \
	  pod-security.kubernetes.io/audit=restricted
	$(HELM) upgrade --install driftloop charts/driftloop --namespace $(K8S_NAMESPACE) \
	  --set images.registry=driftloop --set images.tag=dev --wait --timeout 10m

# Foreground; Ctrl-C stops all forwards.
port-forward:
	@echo "predictor http://127.0.0.1:8080  MLflow http://127.0.0.1:5000  KFP UI http://127.0.0.1:8088  KFP API http://127.0.0.1:8888  Prometheus http://127.0.0.1:9090  console http://127.0.0.1:8089 (log in with the driftloop-api-token Secret's token)  Grafana http://127.0.0.1:3000 (dashboards in folder General: driftloop overview, blueprints)"
	@trap 'kill $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	$(KUBECTL) -n $(K8S_NAMESPACE) port-forward svc/sentiment-predictor 8080:80 & \
	$(KUBECTL) -n $(K8S_NAMESPACE) port-forward svc/driftloop-mlflow 5000:5000 & \
	$(KUBECTL) -n $(K8S_NAMESPACE) port-forward svc/driftloop-console 8089:8088 & \
	$(KUBECTL) -n $(KFP_NAMESPACE) port-forward svc/ml-pipeline-ui 8088:80 & \
	$(KUBECTL) -n $(KFP_NAMESPACE) port-forward svc/ml-pipeline 8888:8888 & \
	$(KUBECTL) -n $(MONITORING_NAMESPACE) port-forward svc/kube-prometheus-stack-prometheus 9090:9090 & \
	$(KUBECTL) -n $(MONITORING_NAMESPACE) port-forward svc/kube-prometheus-stack-grafana 3000:80 & \
	wait

# KFP's API as `make port-forward` exposes it; override for an in-cluster or ingress URL.
KF_PIPELINES_ENDPOINT ?= http://127.0.0.1:8888
pipelines-upload: $(STAMP)
	KF_PIPELINES_ENDPOINT=$(KF_PIPELINES_ENDPOINT) $(BIN)/driftloop pipelines upload training
	KF_PIPELINES_ENDPOINT=$(KF_PIPELINES_ENDPOINT) $(BIN)/driftloop pipelines upload retraining

pipeline-run: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make pipeline-run NAME=training|retraining [PARAMS='--param k=v']"; exit 2; }
	KF_PIPELINES_ENDPOINT=$(KF_PIPELINES_ENDPOINT) $(BIN)/driftloop pipelines run $(NAME) $(PARAMS)

# Offline: throwaway secrets in a copy, so nothing real is ever written to build/.
k8s-render:
	rm -rf $(K8S_BUILD) && mkdir -p $(K8S_BUILD)
	cp -r manifests $(K8S_BUILD)/manifests && rm -f $(K8S_BUILD)/manifests/base/secrets/*.env
	$(PYTHON) scripts/generate_k8s_secrets.py $(K8S_BUILD)/manifests/base/secrets
	$(KUBECTL) kustomize $(K8S_BUILD)/manifests/overlays/kind > $(K8S_BUILD)/kind.yaml
	$(KUBECTL) kustomize $(K8S_BUILD)/manifests/overlays/production > $(K8S_BUILD)/production.yaml
	$(HELM) template driftloop charts/driftloop --namespace $(K8S_NAMESPACE) > $(K8S_BUILD)/helm-default.yaml
	$(HELM) template driftloop charts/driftloop --namespace $(K8S_NAMESPACE) \
	  -f charts/driftloop/values-production.yaml > $(K8S_BUILD)/helm-production.yaml
	rm -rf $(K8S_BUILD)/manifests
	@echo "rendered into $(K8S_BUILD)/: kind.yaml production.yaml helm-default.yaml helm-production.yaml"
