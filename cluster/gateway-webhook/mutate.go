package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Names used by the pod-gateway client containers, as documented by the
// pod-gateway chart and its admission controller.
const (
	initContainerName    = "gateway-init"
	sidecarContainerName = "gateway-sidecar"
	configmapVolumeName  = "gateway-configmap"
)

// configmapVolumeMode is the defaultMode (0777) of the settings configmap volume.
const configmapVolumeMode int32 = 0o777

// Config mirrors the command-line flags of the upstream webhook.
type Config struct {
	ListenAddr string
	CertFile   string
	KeyFile    string

	Gateway   string
	DNS       string
	DNSPolicy string

	SetGatewayDefault         bool
	SetGatewayLabel           string
	SetGatewayLabelValue      string
	SetGatewayAnnotation      string
	SetGatewayAnnotationValue string

	InitImage        string
	InitImagePullPol string
	InitImagePrepend bool
	InitCmd          string
	InitMountPoint   string

	SidecarImage        string
	SidecarImagePullPol string
	SidecarCmd          string
	SidecarMountPoint   string

	ConfigmapName string

	// ResolvConf is the resolver file whose nameservers/search/options the
	// webhook copies (upstream always reads its own /etc/resolv.conf).
	ResolvConf string
}

// resolverConfig is what we keep from a resolv.conf file.
type resolverConfig struct {
	Nameservers []string
	Searches    []string
	Options     []corev1.PodDNSConfigOption
}

func readResolvConf(path string) (resolverConfig, error) {
	var rc resolverConfig
	f, err := os.Open(path)
	if err != nil {
		return rc, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		fields := strings.Fields(line)
		switch fields[0] {
		case "nameserver":
			if len(fields) > 1 {
				rc.Nameservers = append(rc.Nameservers, fields[1])
			}
		case "search", "domain":
			rc.Searches = append([]string{}, fields[1:]...)
		case "options":
			for _, o := range fields[1:] {
				name, value, hasValue := strings.Cut(o, ":")
				opt := corev1.PodDNSConfigOption{Name: name}
				if hasValue {
					v := value
					opt.Value = &v
				}
				rc.Options = append(rc.Options, opt)
			}
		}
	}
	return rc, sc.Err()
}

// Mutator decides whether a pod is routed through this webhook's gateway and
// mutates it accordingly.
type Mutator struct {
	cfg      Config
	resolver resolverConfig
	dnsIPs   []string
}

// NewMutator validates the configuration the way the upstream webhook does at
// start-up (DNS servers must resolve; the resolver file must be readable).
// Unlike upstream, --gateway is not resolved here: the gateway's in-cluster
// service name cannot be resolved from the host this stand-in runs on.
func NewMutator(cfg Config) (*Mutator, error) {
	m := &Mutator{cfg: cfg}
	if cfg.DNS != "" {
		for _, server := range strings.Split(cfg.DNS, ",") {
			ip, err := resolveFirst(server)
			if err != nil {
				return nil, fmt.Errorf("DNS server %q: %w", server, err)
			}
			m.dnsIPs = append(m.dnsIPs, ip)
		}
	}
	rc, err := readResolvConf(cfg.ResolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", cfg.ResolvConf, err)
	}
	m.resolver = rc
	return m, nil
}

func resolveFirst(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("no address for %s", host)
	}
	return ips[0].String(), nil
}

// selected reports whether the pod asks for this gateway. Label first, then
// annotation; when the annotation is present it decides. Without a configured
// value the label/annotation must parse as a boolean (an unparsable value is an
// error, as upstream).
func (m *Mutator) selected(pod *corev1.Pod) (bool, error) {
	set := m.cfg.SetGatewayDefault
	check := func(key, want string, values map[string]string) error {
		if key == "" {
			return nil
		}
		val, ok := values[key]
		if !ok {
			return nil
		}
		if want != "" {
			set = val == want
			return nil
		}
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%s=%q is not a boolean: %w", key, val, err)
		}
		set = b
		return nil
	}
	if err := check(m.cfg.SetGatewayLabel, m.cfg.SetGatewayLabelValue, pod.Labels); err != nil {
		return false, err
	}
	if err := check(m.cfg.SetGatewayAnnotation, m.cfg.SetGatewayAnnotationValue, pod.Annotations); err != nil {
		return false, err
	}
	return set, nil
}

// Mutate returns a copy of the pod with the gateway settings applied, and
// whether anything was applied.
func (m *Mutator) Mutate(pod *corev1.Pod, requestNamespace string) (*corev1.Pod, bool, error) {
	set, err := m.selected(pod)
	if err != nil || !set {
		return pod, false, err
	}
	out := pod.DeepCopy()

	if m.cfg.DNS != "" {
		dns := &corev1.PodDNSConfig{Nameservers: append([]string{}, m.dnsIPs...)}
		if m.cfg.DNSPolicy == "None" {
			ns := out.Namespace
			if ns == "" {
				ns = requestNamespace
			}
			for _, s := range m.resolver.Searches {
				if s == "" || s == "." {
					continue
				}
				parts := strings.Split(s, ".")
				if len(parts) > 2 && parts[1] == "svc" && ns != "" {
					parts[0] = ns
				}
				dns.Searches = append(dns.Searches, strings.Join(parts, "."))
			}
			for _, o := range m.resolver.Options {
				dns.Options = append(dns.Options, *o.DeepCopy())
			}
		}
		out.Spec.DNSConfig = dns
	}
	if m.cfg.DNSPolicy != "" {
		out.Spec.DNSPolicy = corev1.DNSPolicy(m.cfg.DNSPolicy)
	}

	env := []corev1.EnvVar{
		{Name: "gateway", Value: m.cfg.Gateway},
		{Name: "DNS", Value: m.cfg.DNS},
		{Name: "DNS_ips", Value: strings.Join(m.dnsIPs, ",")},
		{Name: "K8S_DNS_ips", Value: strings.Join(m.resolver.Nameservers, " ")},
	}
	helper := func(name, image, pull, cmd, mount string) corev1.Container {
		root := int64(0)
		nonRoot := false
		c := corev1.Container{
			Name:            name,
			Image:           image,
			Command:         []string{cmd},
			Env:             append([]corev1.EnvVar{}, env...),
			ImagePullPolicy: corev1.PullPolicy(pull),
			SecurityContext: &corev1.SecurityContext{
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}},
				RunAsUser:    &root,
				RunAsNonRoot: &nonRoot,
			},
		}
		if mount != "" {
			c.VolumeMounts = []corev1.VolumeMount{{Name: configmapVolumeName, ReadOnly: true, MountPath: mount}}
		}
		return c
	}
	if m.cfg.InitImage != "" {
		c := helper(initContainerName, m.cfg.InitImage, m.cfg.InitImagePullPol, m.cfg.InitCmd, m.cfg.InitMountPoint)
		if m.cfg.InitImagePrepend {
			out.Spec.InitContainers = append([]corev1.Container{c}, out.Spec.InitContainers...)
		} else {
			out.Spec.InitContainers = append(out.Spec.InitContainers, c)
		}
	}
	if m.cfg.SidecarImage != "" {
		c := helper(sidecarContainerName, m.cfg.SidecarImage, m.cfg.SidecarImagePullPol, m.cfg.SidecarCmd, m.cfg.SidecarMountPoint)
		out.Spec.Containers = append(out.Spec.Containers, c)
	}
	if m.cfg.ConfigmapName != "" {
		mode := configmapVolumeMode
		out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{
			Name: configmapVolumeName,
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: m.cfg.ConfigmapName},
				DefaultMode:          &mode,
			}},
		})
	}
	return out, true, nil
}

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// diffPatch expresses the changes Mutate makes as a JSON patch against the
// original pod. Only the fields Mutate touches are compared.
func diffPatch(orig, mut *corev1.Pod) []patchOp {
	var ops []patchOp
	list := func(path string, before, after []corev1.Container) {
		if len(after) == len(before) {
			return
		}
		if len(before) == 0 {
			ops = append(ops, patchOp{Op: "add", Path: path, Value: after})
			return
		}
		// Prepended elements come first, appended ones last.
		if after[len(after)-1].Name == before[len(before)-1].Name {
			for i := len(after) - len(before) - 1; i >= 0; i-- {
				ops = append(ops, patchOp{Op: "add", Path: path + "/0", Value: after[i]})
			}
			return
		}
		for _, c := range after[len(before):] {
			ops = append(ops, patchOp{Op: "add", Path: path + "/-", Value: c})
		}
	}
	if mut.Spec.DNSConfig != orig.Spec.DNSConfig && mut.Spec.DNSConfig != nil {
		ops = append(ops, patchOp{Op: "add", Path: "/spec/dnsConfig", Value: mut.Spec.DNSConfig})
	}
	if mut.Spec.DNSPolicy != orig.Spec.DNSPolicy {
		ops = append(ops, patchOp{Op: "add", Path: "/spec/dnsPolicy", Value: mut.Spec.DNSPolicy})
	}
	list("/spec/initContainers", orig.Spec.InitContainers, mut.Spec.InitContainers)
	list("/spec/containers", orig.Spec.Containers, mut.Spec.Containers)
	if len(mut.Spec.Volumes) != len(orig.Spec.Volumes) {
		if len(orig.Spec.Volumes) == 0 {
			ops = append(ops, patchOp{Op: "add", Path: "/spec/volumes", Value: mut.Spec.Volumes})
		} else {
			for _, v := range mut.Spec.Volumes[len(orig.Spec.Volumes):] {
				ops = append(ops, patchOp{Op: "add", Path: "/spec/volumes/-", Value: v})
			}
		}
	}
	return ops
}
