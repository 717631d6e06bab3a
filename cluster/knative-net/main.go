// knative-net: the network glue that lets Knative Eventing run as host processes beside the
// local cluster (cluster/knative.sh). One process, three jobs:
//
//   - an HTTP forward proxy (-proxy) for the data plane: absolute-URI requests to cluster-local
//     service names (-route host-glob=127.0.0.1:port) go to the local port with the Host header
//     kept (the IMC dispatcher routes on it); CONNECT to a routed name is tunnelled the same way
//     (https://kubernetes.default.svc for OIDC discovery); a route to "dns" keeps the name and port and
//     resolves the name with the cluster's DNS (-cluster-dns): Services whose pods run on the real node;
//   - forwards into network namespaces (-in netns:listen=target): listens inside the namespace,
//     dials target on the host (the API server port for the controllers);
//   - forwards out of them (-out listen=netns:target): listens on the host, dials target inside
//     the namespace (the API server calling the webhooks).
//
// Standard library only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type route struct{ glob, target string }

func main() {
	var routesF, inF, outF multi
	proxyAddr := flag.String("proxy", "", "listen address of the HTTP forward proxy")
	flag.Var(&routesF, "route", "host-glob=target (repeatable), for -proxy")
	flag.Var(&inF, "in", "netns:listen=target (repeatable): listen inside netns, dial target on the host")
	flag.Var(&outF, "out", "listen=netns:target (repeatable): listen on the host, dial target inside netns")
	clusterDNS := flag.String("cluster-dns", "", "DNS server (ip:port) for routes to \"dns\"")
	flag.Parse()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if *clusterDNS != "" {
		dialer.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, *clusterDNS)
		}}
	}

	var routes []route
	for _, r := range routesF {
		glob, target, ok := strings.Cut(r, "=")
		if !ok {
			log.Fatalf("-route %q: want host-glob=target", r)
		}
		routes = append(routes, route{glob, target})
	}
	for _, f := range inF {
		ns, rest, ok1 := strings.Cut(f, ":")
		listen, target, ok2 := strings.Cut(rest, "=")
		if !ok1 || !ok2 {
			log.Fatalf("-in %q: want netns:listen=target", f)
		}
		ln, err := inNetns(ns, func() (net.Listener, error) { return net.Listen("tcp", listen) })
		if err != nil {
			log.Fatalf("-in %q: %v", f, err)
		}
		go serve(ln, func() (net.Conn, error) { return net.DialTimeout("tcp", target, 5*time.Second) })
	}
	for _, f := range outF {
		listen, rest, ok1 := strings.Cut(f, "=")
		ns, target, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			log.Fatalf("-out %q: want listen=netns:target", f)
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			log.Fatalf("-out %q: %v", f, err)
		}
		dial, err := netnsDialer(ns, target)
		if err != nil {
			log.Fatalf("-out %q: %v", f, err)
		}
		go serve(ln, dial)
	}
	if *proxyAddr == "" {
		select {}
	}
	p := &proxy{routes: routes, dialer: dialer, rp: &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			MaxIdleConns:        1000,
			MaxIdleConnsPerHost: 1000,
			IdleConnTimeout:     90 * time.Second,
		},
		ErrorLog: log.New(os.Stderr, "proxy: ", log.LstdFlags),
	}}
	log.Printf("proxy on %s, %d routes", *proxyAddr, len(routes))
	log.Fatal(http.ListenAndServe(*proxyAddr, p))
}

type proxy struct {
	routes []route
	dialer *net.Dialer
	rp     *httputil.ReverseProxy
}

func (p *proxy) target(hostport string) (string, bool) {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	for _, r := range p.routes {
		if ok, _ := path.Match(r.glob, host); ok {
			if r.target == "dns" {
				return withPort(hostport), true
			}
			return r.target, true
		}
	}
	return "", false
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect && r.URL.Host == "" {
		// not a proxy request: the health check
		io.WriteString(w, "ok\n")
		return
	}
	target, ok := p.target(r.Host)
	if !ok {
		http.Error(w, fmt.Sprintf("knative-net: no route for host %q", r.Host), http.StatusBadGateway)
		return
	}
	if r.Method == http.MethodConnect {
		up, err := p.dialer.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		down, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			up.Write(b)
		}
		pipe(down, up)
		return
	}
	// Rewrite keeps r.Host as the outgoing Host header; only the address changes.
	out := r.Clone(r.Context())
	out.URL.Scheme = "http"
	out.URL.Host = target
	p.rp.ServeHTTP(w, out)
}

// withPort adds HTTP's default port to a Host header without one.
func withPort(hostport string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(hostport, "80")
}

func serve(ln net.Listener, dial func() (net.Conn, error)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("accept on %s: %v", ln.Addr(), err)
		}
		go func() {
			up, err := dial()
			if err != nil {
				log.Printf("forward from %s: %v", ln.Addr(), err)
				c.Close()
				return
			}
			pipe(c, up)
		}()
	}
}

// pipe copies both ways until both directions are done, passing half-closes on.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}

// enter locks the calling goroutine to its thread and moves that thread into the named
// network namespace (ip netns add creates /run/netns/<name>). Sockets keep the namespace they
// were created in, whichever thread uses them later.
func enter(ns string) error {
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.LockOSThread()
	if _, _, e := syscall.RawSyscall(sysSetns(), f.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
		return fmt.Errorf("setns %s: %v", ns, e)
	}
	return nil
}

// setns(2) is not in package syscall; its number per architecture.
func sysSetns() uintptr {
	if runtime.GOARCH == "arm64" {
		return 268
	}
	return 308 // amd64
}

// inNetns runs fn on a thread inside ns; the thread is discarded afterwards (the goroutine
// exits still locked), so no other goroutine ever runs in the namespace by accident.
func inNetns[T any](ns string, fn func() (T, error)) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res)
	go func() {
		if err := enter(ns); err != nil {
			var zero T
			ch <- res{zero, err}
			return
		}
		v, err := fn()
		ch <- res{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

// netnsDialer dials target from one thread that stays inside ns.
func netnsDialer(ns, target string) (func() (net.Conn, error), error) {
	type res struct {
		c   net.Conn
		err error
	}
	reqs := make(chan chan res)
	ready := make(chan error)
	go func() {
		if err := enter(ns); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for reply := range reqs {
			c, err := net.DialTimeout("tcp", target, 5*time.Second)
			reply <- res{c, err}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return func() (net.Conn, error) {
		reply := make(chan res)
		reqs <- reply
		r := <-reply
		return r.c, r.err
	}, nil
}
