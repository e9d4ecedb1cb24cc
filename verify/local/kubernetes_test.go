package local

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/routes/routers"
)

// overlays are the deployable kustomizations.
var overlays = []string{"dev", "prod"}

// newObject maps apiVersion/kind to the k8s.io/api type a rendered object
// must decode into. A kind not listed fails the test.
var newObject = map[string]func() any{
	"v1/Namespace":                           func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                           func() any { return &batchv1.Job{} },
	"batch/v1/CronJob":                       func() any { return &batchv1.CronJob{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
}

// renderOverlay renders an overlay with the kustomize Go API (krusty, the
// library kubectl kustomize embeds) on a copy of deploy/kubernetes and
// nginx/ in which each overlay's git-ignored secrets.env is its committed
// secrets.env.example, and returns the rendered YAML. No kubectl binary is
// needed.
func renderOverlay(t testing.TB, overlay string) []byte {
	t.Helper()
	root := copyTree(t, "deploy/kubernetes", "nginx")
	dir := filepath.Join(root, "deploy", "kubernetes", "overlays", overlay)
	example, err := os.ReadFile(filepath.Join(dir, "secrets.env.example"))
	if err != nil {
		t.Fatalf("overlay %s: %v", overlay, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets.env"), example, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := kustomize(dir)
	if err != nil {
		t.Fatalf("kustomize build overlays/%s: %v", overlay, err)
	}
	return out
}

// kustomize builds the kustomization in dir as `kubectl kustomize` does
// (default options: load restrictions to the kustomization root, no
// plugins, no Helm).
func kustomize(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	return rm.AsYaml()
}

// copyTree copies the named folders of the repository, minus any real
// secrets.env, into a temporary root with the same layout.
func copyTree(t testing.TB, dirs ...string) string {
	t.Helper()
	src, dst := repoRoot(t), t.TempDir()
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(src, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if e.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			if e.Name() == "secrets.env" {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// manifest is one overlay's rendered objects, decoded.
type manifest struct {
	overlay      string
	all          []any
	namespaces   []*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	services     []*corev1.Service
	deployments  map[string]*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	jobs         []*batchv1.Job
	cronJobs     []*batchv1.CronJob
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	pdbs         []*policyv1.PodDisruptionBudget
	policies     []*networkingv1.NetworkPolicy
}

// podTemplate is a workload's pod template with the workload's name.
type podTemplate struct {
	owner string // Kind/name
	spec  *corev1.PodTemplateSpec
	// long says whether the pods run for good (Deployment, StatefulSet)
	// rather than to completion (Job).
	long bool
}

func (m *manifest) templates() []podTemplate {
	var out []podTemplate
	for _, name := range sortedKeys(m.deployments) {
		out = append(out, podTemplate{"Deployment/" + name, &m.deployments[name].Spec.Template, true})
	}
	for _, s := range m.statefulSets {
		out = append(out, podTemplate{"StatefulSet/" + s.Name, &s.Spec.Template, true})
	}
	for _, j := range m.jobs {
		out = append(out, podTemplate{"Job/" + j.Name, &j.Spec.Template, false})
	}
	for _, c := range m.cronJobs {
		out = append(out, podTemplate{"CronJob/" + c.Name, &c.Spec.JobTemplate.Spec.Template, false})
	}
	return out
}

// selecting returns the pod templates a label selector matches.
func (m *manifest) selecting(t testing.TB, sel *metav1.LabelSelector) []podTemplate {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("%s: selector %v: %v", m.overlay, sel, err)
	}
	var out []podTemplate
	for _, pt := range m.templates() {
		if s.Matches(labels.Set(pt.spec.Labels)) {
			out = append(out, pt)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// decodeManifest splits rendered YAML into objects and decodes each one
// strictly into its k8s.io/api type: duplicate keys, unknown fields and
// wrong types fail.
func decodeManifest(t testing.TB, overlay string, rendered []byte) *manifest {
	t.Helper()
	m := &manifest{overlay: overlay, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, deployments: map[string]*appsv1.Deployment{}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(rendered)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: reading YAML: %v", overlay, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Errorf("%s: %v", overlay, err)
			continue
		}
		m.all = append(m.all, obj)
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespaces = append(m.namespaces, o)
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *corev1.Secret:
			m.secrets[o.Name] = o
		case *corev1.Service:
			m.services = append(m.services, o)
		case *appsv1.Deployment:
			m.deployments[o.Name] = o
		case *appsv1.StatefulSet:
			m.statefulSets = append(m.statefulSets, o)
		case *batchv1.Job:
			m.jobs = append(m.jobs, o)
		case *batchv1.CronJob:
			m.cronJobs = append(m.cronJobs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas = append(m.hpas, o)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, o)
		case *networkingv1.NetworkPolicy:
			m.policies = append(m.policies, o)
		}
	}
	if len(m.all) == 0 {
		t.Fatalf("%s: rendered no objects", overlay)
	}
	return m
}

// decodeStrict decodes one YAML document into the k8s.io/api type of its
// apiVersion and kind.
func decodeStrict(doc []byte) (any, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, err
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	mk, ok := newObject[gvk]
	if !ok {
		return nil, fmt.Errorf("object of unexpected kind %s", gvk)
	}
	obj := mk()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		_ = json.Unmarshal(js, &meta)
		return nil, fmt.Errorf("%s %q does not decode strictly into its k8s.io/api type: %w", gvk, meta.Metadata.Name, err)
	}
	return obj, nil
}

// manifests renders and decodes every overlay once per test binary.
var manifestCache = map[string]*manifest{}

func loadManifest(t *testing.T, overlay string) *manifest {
	t.Helper()
	if m, ok := manifestCache[overlay]; ok {
		return m
	}
	m := decodeManifest(t, overlay, renderOverlay(t, overlay))
	if !t.Failed() {
		manifestCache[overlay] = m
	}
	return m
}

// TestKubernetesOverlaysRenderAndDecodeStrictly renders every overlay with
// the kustomize Go API and decodes every object strictly.
func TestKubernetesOverlaysRenderAndDecodeStrictly(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			m := loadManifest(t, o)
			t.Logf("%s: %d objects", o, len(m.all))
		})
	}
}

// TestStrictDecodingRejectsBadManifests shows the decoder catches what it
// promises to: an unknown (misspelt) field and a wrong type.
func TestStrictDecodingRejectsBadManifests(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n",
		"wrong type":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n",
		"bad quantity":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: \"http\"}]\n",
		"unknown kind":  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		"duplicate key": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n",
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decodeStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 2\n")); err != nil {
		t.Errorf("a valid Deployment: %v", err)
	}
}

// TestKubernetesPolicies checks what every rendered overlay must hold.
func TestKubernetesPolicies(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			m := loadManifest(t, o)
			checkNamespace(t, m)
			checkWorkloads(t, m)
			checkSelectors(t, m)
			checkReferences(t, m)
			checkScaling(t, m, o)
			checkStorage(t, m)
			checkRuntime(t, m)
		})
	}
}

func checkNamespace(t *testing.T, m *manifest) {
	if len(m.namespaces) != 1 || m.namespaces[0].Name != routers.Namespace {
		t.Errorf("namespaces %v, want exactly %s", m.namespaces, routers.Namespace)
	}
	for _, obj := range m.all {
		meta := objectMeta(obj)
		if _, isNS := obj.(*corev1.Namespace); !isNS && meta.Namespace != routers.Namespace {
			t.Errorf("%T %s is in namespace %q, want %s", obj, meta.Name, meta.Namespace, routers.Namespace)
		}
	}
}

func objectMeta(obj any) metav1.ObjectMeta {
	b, _ := json.Marshal(obj)
	var v struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Metadata
}

// checkWorkloads: probes, requests and limits, the restrictive security
// context, and function probes on /readyz and /livez.
func checkWorkloads(t *testing.T, m *manifest) {
	for _, pt := range m.templates() {
		ps := pt.spec.Spec
		sc := ps.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: pod securityContext must set runAsNonRoot: true and a non-zero runAsUser", pt.owner)
		}
		if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod securityContext must set seccompProfile RuntimeDefault", pt.owner)
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken must be false (no pod talks to the API server)", pt.owner)
		}
		if len(ps.InitContainers) > 0 {
			t.Errorf("%s: init containers are not checked by this test; add them to it", pt.owner)
		}
		for _, c := range ps.Containers {
			where := pt.owner + " container " + c.Name
			csc := c.SecurityContext
			if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
				csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
				csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 ||
				(csc.Privileged != nil && *csc.Privileged) {
				t.Errorf("%s: securityContext must set allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities.drop [ALL] and add nothing", where)
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[res]
				lim, hasLim := c.Resources.Limits[res]
				if !hasReq || !hasLim {
					t.Errorf("%s: needs a %s request and limit", where, res)
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s: %s request %s above its limit %s", where, res, req.String(), lim.String())
				}
			}
			if !pt.long {
				continue
			}
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s: needs readiness and liveness probes", where)
				continue
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				if p != nil && p.HTTPGet != nil && !containerHasPort(c, p.HTTPGet.Port) {
					t.Errorf("%s: probe port %s is not a container port", where, p.HTTPGet.Port.String())
				}
			}
			if pt.spec.Labels["app.kubernetes.io/component"] == "function" {
				// The health function stays ready while a dependency is
				// down: reporting that is its job.
				want := "/readyz"
				if pt.owner == "Deployment/"+routes.Health {
					want = "/livez"
				}
				if g := c.ReadinessProbe.HTTPGet; g == nil || g.Path != want {
					t.Errorf("%s: readiness probe must GET %s", where, want)
				}
				if g := c.LivenessProbe.HTTPGet; g == nil || g.Path != "/livez" {
					t.Errorf("%s: liveness probe must GET /livez (no I/O: a database outage must not restart pods)", where)
				}
			}
		}
	}
}

func containerHasPort(c corev1.Container, p intstr.IntOrString) bool {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return true
		}
	}
	return false
}

// checkSelectors: workload selectors match their templates; every Service,
// PodDisruptionBudget and NetworkPolicy selects some pod template; Service
// target ports exist.
func checkSelectors(t *testing.T, m *manifest) {
	for _, name := range sortedKeys(m.deployments) {
		d := m.deployments[name]
		checkOwnSelector(t, "Deployment/"+name, d.Spec.Selector, d.Spec.Template.Labels)
	}
	for _, s := range m.statefulSets {
		checkOwnSelector(t, "StatefulSet/"+s.Name, s.Spec.Selector, s.Spec.Template.Labels)
	}
	for _, svc := range m.services {
		if len(svc.Spec.Selector) == 0 {
			t.Errorf("Service/%s has no selector", svc.Name)
			continue
		}
		pts := m.selecting(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
		if len(pts) == 0 {
			t.Errorf("Service/%s selects no pod template (selector %v)", svc.Name, svc.Spec.Selector)
		}
		for _, pt := range pts {
			if !pt.long {
				t.Errorf("Service/%s selects the pods of %s, which run to completion", svc.Name, pt.owner)
			}
			for _, sp := range svc.Spec.Ports {
				found := false
				for _, c := range pt.spec.Spec.Containers {
					found = found || containerHasPort(c, sp.TargetPort)
				}
				if !found {
					t.Errorf("Service/%s port %s: target port %s is not a port of %s", svc.Name, sp.Name, sp.TargetPort.String(), pt.owner)
				}
			}
		}
	}
	for _, pdb := range m.pdbs {
		if len(m.selecting(t, pdb.Spec.Selector)) == 0 {
			t.Errorf("PodDisruptionBudget/%s selects no pod template", pdb.Name)
		}
	}
	for _, np := range m.policies {
		if len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) > 0 && len(m.selecting(t, &np.Spec.PodSelector)) == 0 {
			t.Errorf("NetworkPolicy/%s: podSelector matches no pod template", np.Name)
		}
		var peers []networkingv1.NetworkPolicyPeer
		for _, in := range np.Spec.Ingress {
			peers = append(peers, in.From...)
		}
		for _, eg := range np.Spec.Egress {
			peers = append(peers, eg.To...)
		}
		for _, p := range peers {
			// Peers in other namespaces (cluster DNS) are not ours to check.
			if p.PodSelector != nil && p.NamespaceSelector == nil && len(m.selecting(t, p.PodSelector)) == 0 {
				t.Errorf("NetworkPolicy/%s: peer podSelector %v matches no pod template", np.Name, p.PodSelector.MatchLabels)
			}
		}
	}
}

func checkOwnSelector(t *testing.T, owner string, sel *metav1.LabelSelector, tmpl map[string]string) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(labels.Set(tmpl)) {
		t.Errorf("%s: selector %v does not match its template labels %v (err %v)", owner, sel, tmpl, err)
	}
}

// checkReferences: every ConfigMap and Secret a pod refers to exists, with
// the keys it reads.
func checkReferences(t *testing.T, m *manifest) {
	hasKey := func(kind, name, key string) error {
		switch kind {
		case "ConfigMap":
			cm, ok := m.configMaps[name]
			if !ok {
				return fmt.Errorf("ConfigMap %q is not in the overlay", name)
			}
			if _, ok := cm.Data[key]; key != "" && !ok {
				return fmt.Errorf("ConfigMap %q has no key %q", name, key)
			}
		case "Secret":
			s, ok := m.secrets[name]
			if !ok {
				return fmt.Errorf("Secret %q is not in the overlay", name)
			}
			_, inData := s.Data[key]
			_, inString := s.StringData[key]
			if key != "" && !inData && !inString {
				return fmt.Errorf("Secret %q has no key %q", name, key)
			}
		}
		return nil
	}
	for _, pt := range m.templates() {
		var errs []error
		for _, c := range pt.spec.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					errs = append(errs, hasKey("ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key))
				}
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					errs = append(errs, hasKey("Secret", e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key))
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					errs = append(errs, hasKey("ConfigMap", ef.ConfigMapRef.Name, ""))
				}
				if ef.SecretRef != nil {
					errs = append(errs, hasKey("Secret", ef.SecretRef.Name, ""))
				}
			}
		}
		for _, v := range pt.spec.Spec.Volumes {
			if v.ConfigMap != nil {
				errs = append(errs, hasKey("ConfigMap", v.ConfigMap.Name, ""))
			}
			if v.Secret != nil {
				errs = append(errs, hasKey("Secret", v.Secret.SecretName, ""))
			}
		}
		if err := errors.Join(errs...); err != nil {
			t.Errorf("%s: %v", pt.owner, err)
		}
	}
	// The generated Secret keeps kustomize's content hash in its name, so a
	// changed value rolls the pods, and every reference was rewritten to it
	// (the lookups above found it under the hashed name).
	var generated *corev1.Secret
	for name, s := range m.secrets {
		if strings.HasPrefix(name, "platform-secrets") {
			generated = s
		}
	}
	if generated == nil {
		t.Error("no platform-secrets Secret")
	} else if !regexp.MustCompile(`^platform-secrets-[a-z0-9]{10}$`).MatchString(generated.Name) {
		t.Errorf("Secret %s has no content-hash suffix: pods would keep old values after a change (drop disableNameSuffixHash)", generated.Name)
	}
	if s := generated; s != nil {
		for k, v := range s.Data {
			if string(v) != "change-me" {
				t.Errorf("Secret platform-secrets key %s: rendered from something other than secrets.env.example", k)
			}
		}
	}
}

// checkScaling: users and usage autoscale on CPU and memory (3-10 pods in
// prod); HPAs target existing Deployments that leave replicas to them;
// every function and the gateway has a disruption budget.
func checkScaling(t *testing.T, m *manifest, overlay string) {
	scaled := map[string]bool{}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		d, ok := m.deployments[ref.Name]
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || !ok {
			t.Errorf("HorizontalPodAutoscaler/%s targets %s %s/%s, which is not a Deployment of the overlay", h.Name, ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment/%s sets replicas although HorizontalPodAutoscaler/%s owns them (every apply would reset them)", d.Name, h.Name)
		}
		scaled[ref.Name] = true
		var metrics []string
		for _, mt := range h.Spec.Metrics {
			if mt.Resource != nil {
				metrics = append(metrics, string(mt.Resource.Name))
			}
		}
		slices.Sort(metrics)
		// Not memory: a Go process's heap stays near GOGC's target under any
		// load, so a memory target would pin the Deployment at maxReplicas.
		if !slices.Equal(metrics, []string{"cpu"}) {
			t.Errorf("HorizontalPodAutoscaler/%s scales on %v, want cpu only", h.Name, metrics)
		}
		lo, hi := int32(1), h.Spec.MaxReplicas
		if h.Spec.MinReplicas != nil {
			lo = *h.Spec.MinReplicas
		}
		if overlay == "prod" && (lo != 3 || hi != 10) {
			t.Errorf("prod HorizontalPodAutoscaler/%s scales %d-%d, want 3-10", h.Name, lo, hi)
		}
		if lo > hi {
			t.Errorf("HorizontalPodAutoscaler/%s: minReplicas %d above maxReplicas %d", h.Name, lo, hi)
		}
	}
	for _, fn := range []string{routes.Users, routes.Usage} {
		if !scaled[fn] {
			t.Errorf("Deployment/%s has no HorizontalPodAutoscaler", fn)
		}
	}
	for _, name := range append(slices.Clone(routes.Functions), "nginx") {
		d, ok := m.deployments[name]
		if !ok {
			t.Errorf("no Deployment %s", name)
			continue
		}
		covered := false
		for _, pdb := range m.pdbs {
			s, _ := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			covered = covered || s.Matches(labels.Set(d.Spec.Template.Labels))
		}
		if !covered {
			t.Errorf("Deployment/%s has no PodDisruptionBudget", name)
		}
	}
	if d := m.deployments["nginx"]; d != nil && (d.Spec.Replicas == nil || *d.Spec.Replicas != 2) {
		t.Errorf("Deployment/nginx replicas %v, want 2", d.Spec.Replicas)
	}
}

// checkRuntime: what a real cluster needs that decoding cannot see.
//   - every long-running container waits before SIGTERM (preStop) with the
//     kubelet's sleep action: the function images are distroless and have
//     no sleep binary, so an exec of sleep would fail; the grace period
//     covers the sleep plus the shutdown;
//   - every image names its registry (CRI-O and other runtimes refuse
//     unqualified short names);
//   - nginx runs no more workers than its CPU limit.
func checkRuntime(t *testing.T, m *manifest) {
	for _, pt := range m.templates() {
		if !pt.long {
			continue
		}
		for _, c := range pt.spec.Spec.Containers {
			where := pt.owner + " container " + c.Name
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
				if pt.spec.Labels["app.kubernetes.io/component"] == "function" || pt.spec.Labels["app.kubernetes.io/component"] == "gateway" {
					t.Errorf("%s: needs a preStop sleep action (lifecycle.preStop.sleep), so it leaves the Service before SIGTERM", where)
				}
				continue
			}
			if c.Lifecycle.PreStop.Exec != nil {
				t.Errorf("%s: preStop both sleeps and execs", where)
			}
			grace := int64(30)
			if g := pt.spec.Spec.TerminationGracePeriodSeconds; g != nil {
				grace = *g
			}
			if grace < c.Lifecycle.PreStop.Sleep.Seconds+10 {
				t.Errorf("%s: terminationGracePeriodSeconds %d leaves under 10 s after the %d s preStop sleep", where, grace, c.Lifecycle.PreStop.Sleep.Seconds)
			}
		}
		for _, c := range pt.spec.Spec.Containers {
			if first, _, ok := strings.Cut(c.Image, "/"); !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
				t.Errorf("%s container %s: image %q has no registry host; write it in full (docker.io/...)", pt.owner, c.Name, c.Image)
			}
		}
	}
	if d := m.deployments["nginx"]; d != nil {
		conf := string(readRepoFile(t, "nginx/nginx.conf"))
		mt := regexp.MustCompile(`(?m)^worker_processes\s+(\S+);`).FindStringSubmatch(conf)
		lim := d.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU]
		if mt == nil || mt[1] == "auto" {
			t.Errorf("nginx.conf: worker_processes %v counts the node's CPUs, not the container's limit %s", mt, lim.String())
		} else if n, err := strconv.Atoi(mt[1]); err != nil || int64(n)*1000 > max(lim.MilliValue(), 1000) {
			t.Errorf("nginx.conf: worker_processes %s above the gateway's CPU limit %s", mt[1], lim.String())
		}
	}
}

// checkStorage: Postgres is a StatefulSet with a 10Gi claim.
func checkStorage(t *testing.T, m *manifest) {
	if len(m.statefulSets) != 1 || m.statefulSets[0].Name != "postgres" {
		t.Fatalf("want one StatefulSet, postgres; have %d", len(m.statefulSets))
	}
	ss := m.statefulSets[0]
	if len(ss.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("StatefulSet/postgres: %d volume claim templates, want 1", len(ss.Spec.VolumeClaimTemplates))
	}
	got := ss.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
	if want := resource.MustParse("10Gi"); got.Cmp(want) != 0 {
		t.Errorf("StatefulSet/postgres claims %s, want 10Gi", got.String())
	}
	if !strings.HasPrefix(ss.Spec.Template.Spec.Containers[0].Image, "docker.io/library/postgres:15") {
		t.Errorf("StatefulSet/postgres runs %s, want postgres:15", ss.Spec.Template.Spec.Containers[0].Image)
	}
}

// TestKubernetesNetworkPolicies evaluates the rendered NetworkPolicies the
// way a cluster does (a connection needs an ingress rule on the receiver
// and an egress rule on the sender, once any policy selects them) and
// compares who reaches whom with the intended matrix.
func TestKubernetesNetworkPolicies(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			m := loadManifest(t, o)
			component := func(pt podTemplate) string { return pt.spec.Labels["app.kubernetes.io/component"] }
			targets := map[string]int32{"function": 8080, "database": 5432, "cache": 6379, "gateway": 8080}
			want := map[string][]string{ // receiver component -> sender components
				"function": {"gateway"},
				"database": {"function", "migration"},
				"cache":    {"function", "migration"},
				"gateway":  {},
			}
			pts := m.templates()
			for _, dst := range pts {
				port, ok := targets[component(dst)]
				if !ok {
					continue
				}
				for _, src := range pts {
					allowed := allows(m, src.spec.Labels, dst.spec.Labels, port)
					expected := slices.Contains(want[component(dst)], component(src))
					if allowed != expected {
						t.Errorf("%s -> %s:%d allowed=%v, want %v", src.owner, dst.owner, port, allowed, expected)
					}
				}
			}
			// Anyone outside reaches the gateway, and nothing else.
			for _, dst := range pts {
				in := ingressAllowed(m, nil, dst.spec.Labels, 8080)
				if in != (component(dst) == "gateway") {
					t.Errorf("outside -> %s:8080 allowed=%v", dst.owner, in)
				}
			}
			// Every pod reaches cluster DNS: the kube-dns pods, and on GKE
			// NodeLocal DNSCache and Cloud DNS, which answer from
			// link-local addresses (no pod to select).
			dns := map[string]string{"k8s-app": "kube-dns"}
			for _, src := range pts {
				if !egressAllowed(m, src.spec.Labels, dns, true, 53) {
					t.Errorf("%s cannot reach cluster DNS", src.owner)
				}
				for _, ip := range []string{"169.254.20.10", "169.254.169.254"} {
					for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
						if !egressAllowedToIP(m, src.spec.Labels, ip, proto, 53) {
							t.Errorf("%s cannot reach DNS at %s:53/%s (GKE NodeLocal DNSCache / Cloud DNS)", src.owner, ip, proto)
						}
					}
				}
				// DNS, not everything: no other port at those addresses.
				if egressAllowedToIP(m, src.spec.Labels, "169.254.169.254", corev1.ProtocolTCP, 80) {
					t.Errorf("%s reaches the metadata server on port 80; only DNS is allowed", src.owner)
				}
			}
		})
	}
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

func portAllowed(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil || (p.Port.Type == intstr.Int && p.Port.IntVal == port) {
			return true
		}
	}
	return false
}

// peerMatches: src nil is a client outside the cluster; foreign says the
// pod is in another namespace.
func peerMatches(peers []networkingv1.NetworkPolicyPeer, l map[string]string, foreign bool) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if l == nil {
			if p.IPBlock != nil {
				return true
			}
			continue
		}
		if p.IPBlock != nil {
			// Addresses outside the cluster (egressAllowedToIP), not pods.
			continue
		}
		if foreign != (p.NamespaceSelector != nil) {
			continue
		}
		if p.PodSelector == nil || selects(p.PodSelector, l) {
			return true
		}
	}
	return false
}

func hasType(np *networkingv1.NetworkPolicy, ty networkingv1.PolicyType) bool {
	return slices.Contains(np.Spec.PolicyTypes, ty)
}

func ingressAllowed(m *manifest, src, dst map[string]string, port int32) bool {
	isolated := false
	for _, np := range m.policies {
		if !hasType(np, networkingv1.PolicyTypeIngress) || !selects(&np.Spec.PodSelector, dst) {
			continue
		}
		isolated = true
		for _, r := range np.Spec.Ingress {
			if portAllowed(r.Ports, port) && peerMatches(r.From, src, false) {
				return true
			}
		}
	}
	return !isolated
}

func egressAllowed(m *manifest, src, dst map[string]string, foreign bool, port int32) bool {
	isolated := false
	for _, np := range m.policies {
		if !hasType(np, networkingv1.PolicyTypeEgress) || !selects(&np.Spec.PodSelector, src) {
			continue
		}
		isolated = true
		for _, r := range np.Spec.Egress {
			if portAllowed(r.Ports, port) && peerMatches(r.To, dst, foreign) {
				return true
			}
		}
	}
	return !isolated
}

// egressAllowedToIP: may a pod with labels src send to ip:port/proto
// outside the cluster (an address no pod selector covers)?
func egressAllowedToIP(m *manifest, src map[string]string, ip string, proto corev1.Protocol, port int32) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		panic(err)
	}
	isolated := false
	for _, np := range m.policies {
		if !hasType(np, networkingv1.PolicyTypeEgress) || !selects(&np.Spec.PodSelector, src) {
			continue
		}
		isolated = true
		for _, r := range np.Spec.Egress {
			if !portProtoAllowed(r.Ports, proto, port) {
				continue
			}
			if len(r.To) == 0 {
				return true
			}
			for _, p := range r.To {
				if p.IPBlock == nil {
					continue
				}
				pfx, err := netip.ParsePrefix(p.IPBlock.CIDR)
				if err != nil || !pfx.Contains(addr) {
					continue
				}
				excluded := false
				for _, ex := range p.IPBlock.Except {
					if e, err := netip.ParsePrefix(ex); err == nil && e.Contains(addr) {
						excluded = true
					}
				}
				if !excluded {
					return true
				}
			}
		}
	}
	return !isolated
}

func portProtoAllowed(ports []networkingv1.NetworkPolicyPort, proto corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp == proto && (p.Port == nil || (p.Port.Type == intstr.Int && p.Port.IntVal == port)) {
			return true
		}
	}
	return false
}

func allows(m *manifest, src, dst map[string]string, port int32) bool {
	return egressAllowed(m, src, dst, false, port) && ingressAllowed(m, src, dst, port)
}

// TestKubernetesRoutesEqualRoutingTable follows every route through the
// rendered cluster: the gateway's ConfigMap holds the generated routes.conf
// and Kubernetes upstreams, the gateway mounts it, each upstream host is
// the function's Service, and that Service selects the pods of the
// Deployment running the function's image.
func TestKubernetesRoutesEqualRoutingTable(t *testing.T) {
	files, err := routers.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			m := loadManifest(t, o)
			var cm *corev1.ConfigMap
			for name, c := range m.configMaps {
				if strings.HasPrefix(name, "nginx-config") {
					cm = c
				}
			}
			if cm == nil {
				t.Fatal("no nginx-config ConfigMap")
			}
			for key, want := range map[string][]byte{
				"routes.conf":    files["nginx/routes.conf"],
				"upstreams.conf": files["nginx/upstreams.kubernetes.conf"],
				"nginx.conf":     readRepoFile(t, "nginx/nginx.conf"),
				"gateway.conf":   readRepoFile(t, "nginx/gateway.conf"),
			} {
				if cm.Data[key] != string(want) {
					t.Errorf("ConfigMap %s key %s differs from the repository's nginx files", cm.Name, key)
				}
			}
			if got := parseRoutes(t, []byte(cm.Data["routes.conf"])); !mapsEqual(got, wantRoutes()) {
				t.Errorf("gateway routes %v, want %v", got, wantRoutes())
			}
			ngx := m.deployments["nginx"]
			if ngx == nil {
				t.Fatal("no nginx Deployment")
			}
			mounted := false
			for _, v := range ngx.Spec.Template.Spec.Volumes {
				mounted = mounted || (v.ConfigMap != nil && v.ConfigMap.Name == cm.Name)
			}
			if !mounted {
				t.Errorf("Deployment/nginx does not mount ConfigMap %s", cm.Name)
			}
			lb := false
			for _, svc := range m.services {
				lb = lb || (svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Selector["app.kubernetes.io/name"] == "nginx")
			}
			if !lb {
				t.Error("no LoadBalancer Service in front of nginx")
			}
			ups := parseUpstreams([]byte(cm.Data["upstreams.conf"]))
			for _, fn := range routes.Functions {
				servers := ups[routers.UpstreamName(fn)]
				if len(servers) != 1 {
					t.Errorf("upstream %s: servers %v, want the function's Service", routers.UpstreamName(fn), servers)
					continue
				}
				host, port, _ := strings.Cut(servers[0], ":")
				name, ns, _ := strings.Cut(strings.TrimSuffix(host, ".svc.cluster.local"), ".")
				svc := findService(m, name, ns)
				if svc == nil {
					t.Errorf("upstream %s: %s names no Service of the overlay", routers.UpstreamName(fn), servers[0])
					continue
				}
				if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return fmt.Sprint(p.Port) == port }) {
					t.Errorf("Service/%s has no port %s", svc.Name, port)
				}
				pts := m.selecting(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
				if len(pts) != 1 || pts[0].owner != "Deployment/"+fn {
					t.Errorf("Service/%s selects %v, want exactly Deployment/%s", svc.Name, pts, fn)
					continue
				}
				img := pts[0].spec.Spec.Containers[0].Image
				if base, _, _ := strings.Cut(path.Base(img), ":"); base != fn {
					t.Errorf("Deployment/%s runs image %s, want the %s function's image", fn, img, fn)
				}
			}
			if len(m.jobs) != 1 || !strings.Contains(m.jobs[0].Spec.Template.Spec.Containers[0].Image, "/migrate") {
				t.Errorf("want one migration Job running the migrate image")
			}
		})
	}
}

func findService(m *manifest, name, ns string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name && s.Namespace == ns {
			return s
		}
	}
	return nil
}

// TestKubernetesClosesInvoicesMonthly: each overlay schedules the monthly
// invoice close (shared/cmd/closeinvoices) as a CronJob on UTC, never two
// at once, from the same image as the migration Job (so an overlay's
// image rewrite reaches both).
func TestKubernetesClosesInvoicesMonthly(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			m := loadManifest(t, o)
			if len(m.cronJobs) != 1 || m.cronJobs[0].Name != "close-invoices" {
				t.Fatalf("cron jobs %d, want the one close-invoices", len(m.cronJobs))
			}
			c := m.cronJobs[0]
			if c.Spec.Schedule != "0 2 1 * *" || c.Spec.TimeZone == nil || *c.Spec.TimeZone != "Etc/UTC" {
				t.Errorf("schedule %q time zone %v, want 02:00 UTC on the 1st", c.Spec.Schedule, c.Spec.TimeZone)
			}
			if c.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("concurrency policy %q, want Forbid", c.Spec.ConcurrencyPolicy)
			}
			var migrate *batchv1.Job
			for _, j := range m.jobs {
				if j.Name == "migrate" {
					migrate = j
				}
			}
			if migrate == nil {
				t.Fatal("no migrate Job")
			}
			cs := c.Spec.JobTemplate.Spec.Template.Spec.Containers
			if len(cs) != 1 || !slices.Equal(cs[0].Command, []string{"/jobs/closeinvoices"}) {
				t.Fatalf("containers %+v, want one running /jobs/closeinvoices", cs)
			}
			if want := migrate.Spec.Template.Spec.Containers[0].Image; cs[0].Image != want {
				t.Errorf("image %q, want the migration's %q", cs[0].Image, want)
			}
		})
	}
}
