// Command gateway-webhook is a local stand-in for the pod-gateway admission
// controller: a mutating webhook that adds the pod-gateway client init
// container and sidecar to pods that ask for this webhook's gateway.
// See cluster/README.md for exactly what it adds.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func parseFlags(args []string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("gateway-webhook", flag.ContinueOnError)
	// Same flag names as the upstream webhook (Go's flag package accepts -x and --x).
	fs.Bool("debug", false, "Enable debug mode (accepted, no effect).")
	fs.Bool("development", false, "Enable development mode (accepted, no effect).")
	fs.StringVar(&c.ListenAddr, "webhook-listen-address", ":8080", "Address the HTTPS server listens on.")
	fs.StringVar(&c.CertFile, "tls-cert-file-path", "", "TLS certificate file.")
	fs.StringVar(&c.KeyFile, "tls-key-file-path", "", "TLS key file.")
	fs.StringVar(&c.Gateway, "gateway", "", "Name/IP of the gateway pod")
	fs.StringVar(&c.DNS, "DNS", "", "Name/IP of the DNS (comma separated)")
	fs.StringVar(&c.DNSPolicy, "DNSPolicy", "", "Set DNSPolicy")
	fs.BoolVar(&c.SetGatewayDefault, "setGatewayDefault", false, "Set gateway by default in absence of label/annotation")
	fs.StringVar(&c.SetGatewayLabel, "setGatewayLabel", "", "Set gateway for pods with this label set to 'true'")
	fs.StringVar(&c.SetGatewayLabelValue, "setGatewayLabelValue", "", "Set gateway for pods with label set to this value")
	fs.StringVar(&c.SetGatewayAnnotation, "setGatewayAnnotation", "", "Set gateway for pods with this annotation set to 'true'")
	fs.StringVar(&c.SetGatewayAnnotationValue, "setGatewayAnnotationValue", "", "Set gateway for pods with annotation set to this value")
	fs.StringVar(&c.InitImage, "initImage", "", "Init container image")
	fs.StringVar(&c.InitImagePullPol, "initImagePullPol", "", "Init container pull policy")
	fs.BoolVar(&c.InitImagePrepend, "initImagePrepend", false, "Prepend (instead of append) the init container")
	fs.StringVar(&c.InitCmd, "initCmd", "", "Init container command")
	fs.StringVar(&c.InitMountPoint, "initMountPoint", "", "Mountpoint for the configmap in the init container")
	fs.StringVar(&c.SidecarImage, "sidecarImage", "", "Sidecar container image")
	fs.StringVar(&c.SidecarImagePullPol, "sidecarImagePullPol", "", "Sidecar container pull policy")
	fs.StringVar(&c.SidecarCmd, "sidecarCmd", "", "Sidecar container command")
	fs.StringVar(&c.SidecarMountPoint, "sidecarMountPoint", "", "Mountpoint for the configmap in the sidecar container")
	fs.StringVar(&c.ConfigmapName, "configmapName", "", "Name of the configmap to attach to the containers")
	fs.StringVar(&c.ResolvConf, "resolv-conf", "/etc/resolv.conf", "Resolver file to copy DNS settings from (stand-in only)")
	err := fs.Parse(args)
	return c, err
}

// review handles one AdmissionReview (admission.k8s.io v1 or v1beta1: same JSON shape).
func review(m *Mutator, body []byte) (*admissionv1.AdmissionReview, error) {
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("decoding AdmissionReview: %w", err)
	}
	if in.Request == nil {
		return nil, fmt.Errorf("AdmissionReview has no request")
	}
	out := &admissionv1.AdmissionReview{TypeMeta: in.TypeMeta}
	if out.APIVersion == "" {
		out.APIVersion = "admission.k8s.io/v1"
		out.Kind = "AdmissionReview"
	}
	resp := &admissionv1.AdmissionResponse{UID: in.Request.UID, Allowed: true}
	out.Response = resp

	if in.Request.Kind.Kind != "Pod" {
		return out, nil // not a pod: nothing to do
	}
	var pod corev1.Pod
	if err := json.Unmarshal(in.Request.Object.Raw, &pod); err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusBadRequest, Message: "decoding pod: " + err.Error()}
		return out, nil
	}
	mutated, changed, err := m.Mutate(&pod, in.Request.Namespace)
	if err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Message: err.Error()}
		return out, nil
	}
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "*"
	}
	if !changed {
		log.Printf("pod %s/%s: not selected for gateway %s", in.Request.Namespace, name, m.cfg.Gateway)
		return out, nil
	}
	patch, err := json.Marshal(diffPatch(&pod, mutated))
	if err != nil {
		return nil, err
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.PatchType = &pt
	resp.Patch = patch
	log.Printf("pod %s/%s: mutated for gateway %s", in.Request.Namespace, name, m.cfg.Gateway)
	return out, nil
}

func handler(m *Mutator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/wh/mutating/setgateway", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := review(m, body)
		if err != nil {
			log.Printf("review failed: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("/wh/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{\"ok\":true}\n"))
	})
	return mux
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	m, err := NewMutator(cfg)
	if err != nil {
		log.Fatalf("error creating webhook mutator: %v", err)
	}
	log.Printf("config: %+v", cfg)
	srv := &http.Server{
		Addr:              cfg.ListenAddr,
		Handler:           handler(m),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("listening on https://%s", cfg.ListenAddr)
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		err = srv.ListenAndServe()
	} else {
		err = srv.ListenAndServeTLS(cfg.CertFile, cfg.KeyFile)
	}
	if err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
