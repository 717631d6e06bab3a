package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func testMutator(t *testing.T, gw string, mod func(*Config)) *Mutator {
	t.Helper()
	rc := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(rc, []byte("search gateways.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Gateway: gw + "-pod-gateway.gateways.svc.cluster.local", DNS: "172.16.0.1", DNSPolicy: "None",
		SetGatewayLabel: "setGateway", SetGatewayLabelValue: gw,
		SetGatewayAnnotation: "setGateway", SetGatewayAnnotationValue: gw,
		InitImage: "img", InitImagePullPol: "IfNotPresent", InitCmd: "/bin/client_init.sh", InitMountPoint: "/config",
		SidecarImage: "img", SidecarImagePullPol: "IfNotPresent", SidecarCmd: "/bin/client_sidecar.sh", SidecarMountPoint: "/config",
		ConfigmapName: gw + "-pod-gateway", ResolvConf: rc,
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewMutator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newPod(labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team", Labels: labels, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}, DNSPolicy: corev1.DNSClusterFirst},
	}
}

func TestSelection(t *testing.T) {
	m := testMutator(t, "foo", nil)
	cases := []struct {
		name        string
		labels, ann map[string]string
		want        bool
	}{
		{"no label", nil, nil, false},
		{"label foo", map[string]string{"setGateway": "foo"}, nil, true},
		{"label bar", map[string]string{"setGateway": "bar"}, nil, false},
		{"annotation foo", nil, map[string]string{"setGateway": "foo"}, true},
		{"annotation decides over label", map[string]string{"setGateway": "foo"}, map[string]string{"setGateway": "bar"}, false},
		{"annotation foo over label bar", map[string]string{"setGateway": "bar"}, map[string]string{"setGateway": "foo"}, true},
	}
	for _, c := range cases {
		_, changed, err := m.Mutate(newPod(c.labels, c.ann), "team")
		if err != nil || changed != c.want {
			t.Errorf("%s: changed=%v err=%v, want %v", c.name, changed, err, c.want)
		}
	}
}

func TestBooleanModeAndDefault(t *testing.T) {
	m := testMutator(t, "foo", func(c *Config) { c.SetGatewayLabelValue, c.SetGatewayAnnotationValue, c.SetGatewayDefault = "", "", true })
	if _, changed, _ := m.Mutate(newPod(nil, nil), "team"); !changed {
		t.Error("setGatewayDefault should select a pod without label")
	}
	if _, changed, _ := m.Mutate(newPod(map[string]string{"setGateway": "false"}, nil), "team"); changed {
		t.Error("setGateway=false should not select")
	}
	if _, _, err := m.Mutate(newPod(map[string]string{"setGateway": "foo"}, nil), "team"); err == nil {
		t.Error("non-boolean value without configured value must be an error")
	}
}

func TestMutation(t *testing.T) {
	m := testMutator(t, "foo", nil)
	orig := newPod(map[string]string{"setGateway": "foo"}, nil)
	orig.Spec.InitContainers = []corev1.Container{{Name: "prepare", Image: "x"}}
	out, changed, err := m.Mutate(orig, "team")
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if got := out.Spec.InitContainers[1]; got.Name != "gateway-init" || got.Command[0] != "/bin/client_init.sh" {
		t.Errorf("init container: %+v", got)
	}
	side := out.Spec.Containers[1]
	if side.Name != "gateway-sidecar" || side.Env[0].Value != "foo-pod-gateway.gateways.svc.cluster.local" {
		t.Errorf("sidecar: %+v", side)
	}
	envs := map[string]string{}
	for _, e := range side.Env {
		envs[e.Name] = e.Value
	}
	if envs["DNS"] != "172.16.0.1" || envs["DNS_ips"] != "172.16.0.1" || envs["K8S_DNS_ips"] != "10.96.0.10" {
		t.Errorf("env: %v", envs)
	}
	if out.Spec.DNSPolicy != "None" || strings.Join(out.Spec.DNSConfig.Searches, " ") != "team.svc.cluster.local svc.cluster.local cluster.local" {
		t.Errorf("dns: %s %+v", out.Spec.DNSPolicy, out.Spec.DNSConfig)
	}
	if v := out.Spec.Volumes[0]; v.Name != "gateway-configmap" || v.ConfigMap.Name != "foo-pod-gateway" || *v.ConfigMap.DefaultMode != 0o777 {
		t.Errorf("volume: %+v", v)
	}
	if len(orig.Spec.Containers) != 1 {
		t.Error("original pod modified")
	}
}

func TestReviewPatch(t *testing.T) {
	m := testMutator(t, "foo", func(c *Config) { c.InitImagePrepend = true })
	pod := newPod(map[string]string{"setGateway": "foo"}, nil)
	pod.Spec.InitContainers = []corev1.Container{{Name: "prepare", Image: "x"}}
	raw, _ := json.Marshal(pod)
	in := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: "team", Object: runtime.RawExtension{Raw: raw}},
	}
	body, _ := json.Marshal(in)
	out, err := review(m, body)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Response.Allowed || out.Response.UID != "u1" || *out.Response.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("response: %+v", out.Response)
	}
	var ops []map[string]any
	if err := json.Unmarshal(out.Response.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	paths := []string{}
	for _, op := range ops {
		paths = append(paths, op["path"].(string))
	}
	want := "/spec/dnsConfig /spec/dnsPolicy /spec/initContainers/0 /spec/containers/- /spec/volumes"
	if strings.Join(paths, " ") != want {
		t.Errorf("patch paths %v, want %s", paths, want)
	}

	// not selected: allowed, no patch
	pod.Labels["setGateway"] = "baz"
	raw, _ = json.Marshal(pod)
	in.Request.Object.Raw = raw
	body, _ = json.Marshal(in)
	out, _ = review(m, body)
	if !out.Response.Allowed || out.Response.Patch != nil {
		t.Errorf("unselected pod: %+v", out.Response)
	}
}
