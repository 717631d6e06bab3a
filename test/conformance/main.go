// Command cesend sends CloudEvents described in YAML files to an HTTP target with the CloudEvents Go SDK
// (github.com/cloudevents/sdk-go/v2) and prints, for each event, one JSON line with the HTTP status and the
// reply event, if any, as the SDK parsed it.
//
// The YAML files have the shape of the CloudEvents conformance tool's event files (several documents per file
// are allowed, separated by `---`):
//
//	Mode: binary            # or structured; binary when left out
//	ContextAttributes:
//	  specversion: 1.0      # or 0.3
//	  type: io.podgateway.client.pending
//	  id: conformance-foo-1
//	  source: /conformance/cesend
//	  datacontenttype: application/json
//	  Extensions:           # optional extension attributes
//	    traceparent: ...
//	TransportExtensions:    # optional extra HTTP headers
//	  X-Something: value
//	Data: |
//	  {"gateway_name":"foo"}
//
// Usage:
//
//	cesend [-id-suffix S] [-timeout 60s] TARGET_URL FILE_OR_DIR...
//
// A directory stands for its *.yaml and *.yml files, in name order. The exit status is 0 when every event got an
// HTTP answer (whatever its status), 1 when one could not be sent, and 2 on bad usage or an unreadable file.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/client"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"gopkg.in/yaml.v3"
)

// eventFile is one YAML document: one event to send.
type eventFile struct {
	Mode                string            `yaml:"Mode"`
	ContextAttributes   attributes        `yaml:"ContextAttributes"`
	TransportExtensions map[string]string `yaml:"TransportExtensions"`
	Data                *string           `yaml:"Data"`
}

type attributes struct {
	SpecVersion     string            `yaml:"specversion"`
	Type            string            `yaml:"type"`
	ID              string            `yaml:"id"`
	Source          string            `yaml:"source"`
	Subject         string            `yaml:"subject"`
	Time            string            `yaml:"time"`
	DataContentType string            `yaml:"datacontenttype"`
	DataSchema      string            `yaml:"dataschema"`
	SchemaURL       string            `yaml:"schemaurl"`
	Extensions      map[string]string `yaml:"Extensions"`
}

// outcome is the JSON line printed for one event.
type outcome struct {
	File   string          `json:"file"`
	Index  int             `json:"index"`
	Mode   string          `json:"mode"`
	ID     string          `json:"id"`
	Type   string          `json:"type"`
	Status int             `json:"status,omitempty"`
	Reply  json.RawMessage `json:"reply,omitempty"`
	// Body is the raw response body when the answer carried no event (an error document, say).
	Body  string `json:"body,omitempty"`
	Error string `json:"error,omitempty"`
}

func main() {
	idSuffix := flag.String("id-suffix", "", "appended to every event's id (unique ids per run)")
	timeout := flag.Duration("timeout", 60*time.Second, "time limit for one request and its answer")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: cesend [flags] TARGET_URL FILE_OR_DIR...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 2 {
		flag.Usage()
		os.Exit(2)
	}
	target := flag.Arg(0)

	files, err := expand(flag.Args()[1:])
	if err != nil {
		fatal(err)
	}
	type job struct {
		file  string
		index int
		event eventFile
	}
	var jobs []job
	for _, file := range files {
		events, err := readFile(file)
		if err != nil {
			fatal(err)
		}
		for i, e := range events {
			jobs = append(jobs, job{file, i, e})
		}
	}
	if len(jobs) == 0 {
		fatal(errors.New("no events found"))
	}

	recorder := &bodyRecorder{next: http.DefaultTransport}
	protocol, err := cehttp.New(cehttp.WithTarget(target), cehttp.WithRoundTripper(recorder))
	if err != nil {
		fatal(err)
	}
	// No defaulters: the events go out exactly as the files describe them.
	ceClient, err := client.New(protocol)
	if err != nil {
		fatal(err)
	}

	out := json.NewEncoder(os.Stdout)
	failed := false
	for _, j := range jobs {
		result := send(ceClient, recorder, j.event, *idSuffix, *timeout)
		result.File, result.Index = j.file, j.index
		if result.Status == 0 {
			failed = true
		}
		if err := out.Encode(result); err != nil {
			fatal(err)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// send delivers one event and reads the answer with the SDK.
func send(c client.Client, recorder *bodyRecorder, spec eventFile, idSuffix string, timeout time.Duration) outcome {
	mode := strings.ToLower(spec.Mode)
	if mode == "" {
		mode = "binary"
	}
	result := outcome{Mode: mode, ID: spec.ContextAttributes.ID + idSuffix, Type: spec.ContextAttributes.Type}

	event, err := build(spec, idSuffix)
	if err != nil {
		result.Error = err.Error()
		return result
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch mode {
	case "binary":
		ctx = cloudevents.WithEncodingBinary(ctx)
	case "structured":
		ctx = cloudevents.WithEncodingStructured(ctx)
	default:
		result.Error = fmt.Sprintf("Mode %q: must be binary or structured", spec.Mode)
		return result
	}
	if len(spec.TransportExtensions) > 0 {
		header := http.Header{}
		for name, value := range spec.TransportExtensions {
			header.Set(name, value)
		}
		ctx = cehttp.WithCustomHeader(ctx, header)
	}

	recorder.reset()
	reply, res := c.Request(ctx, event)
	var httpResult *cehttp.Result
	if errors.As(res, &httpResult) {
		result.Status = httpResult.StatusCode
	} else if res != nil && !cloudevents.IsACK(res) {
		result.Error = res.Error()
		return result
	}
	if reply != nil {
		raw, err := json.Marshal(reply)
		if err != nil {
			result.Error = fmt.Sprintf("reply event not serializable: %v", err)
		}
		result.Reply = raw
	} else {
		result.Body = recorder.body()
	}
	return result
}

// build turns a YAML document into an SDK event, checking it as the SDK does.
func build(spec eventFile, idSuffix string) (cloudevents.Event, error) {
	a := spec.ContextAttributes
	version := a.SpecVersion
	if version == "" {
		version = cloudevents.VersionV1
	}
	event := cloudevents.NewEvent(version)
	event.SetType(a.Type)
	event.SetID(a.ID + idSuffix)
	event.SetSource(a.Source)
	if a.Subject != "" {
		event.SetSubject(a.Subject)
	}
	if a.Time != "" {
		t, err := types.ParseTime(a.Time)
		if err != nil {
			return event, fmt.Errorf("time %q: %w", a.Time, err)
		}
		event.SetTime(t)
	}
	if a.DataSchema != "" {
		event.SetDataSchema(a.DataSchema)
	}
	if a.SchemaURL != "" {
		event.SetDataSchema(a.SchemaURL) // 0.3's name for dataschema; the SDK writes it as schemaurl for 0.3
	}
	names := make([]string, 0, len(a.Extensions))
	for name := range a.Extensions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := event.Context.SetExtension(name, a.Extensions[name]); err != nil {
			return event, fmt.Errorf("extension %q: %w", name, err)
		}
	}
	if a.DataContentType != "" {
		event.SetDataContentType(a.DataContentType)
	}
	if spec.Data != nil {
		// The bytes go out as written: the body in binary mode; in structured mode the "data" member, embedded
		// as JSON for a JSON content type (so it must be JSON), else as a string.
		data := []byte(*spec.Data)
		if isJSON(event.DataMediaType()) && !json.Valid(data) {
			return event, fmt.Errorf("Data is not valid JSON, but datacontenttype is %q", a.DataContentType)
		}
		event.DataEncoded = data
		event.DataBase64 = false
	}
	if err := event.Validate(); err != nil {
		return event, fmt.Errorf("invalid event: %w", err)
	}
	return event, nil
}

// isJSON tells whether a media type is JSON (no datacontenttype means JSON, as in the SDK).
func isJSON(mediaType string) bool {
	return mediaType == "" || mediaType == "application/json" || mediaType == "text/json" ||
		(strings.HasPrefix(mediaType, "application/") && strings.HasSuffix(mediaType, "+json"))
}

// expand turns the path arguments into YAML files: a file as is, a directory as its *.yaml/*.yml files.
func expand(paths []string) ([]string, error) {
	var files []string
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, path)
			continue
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, entry := range entries { // ReadDir sorts by name
			ext := filepath.Ext(entry.Name())
			if !entry.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, entry.Name()))
			}
		}
	}
	return files, nil
}

// readFile reads every YAML document of a file; unknown keys are errors, so a typo cannot go unnoticed.
func readFile(path string) ([]eventFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	decoder := yaml.NewDecoder(f)
	decoder.KnownFields(true)
	var events []eventFile
	for {
		var e eventFile
		err := decoder.Decode(&e)
		if errors.Is(err, io.EOF) {
			return events, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, len(events), err)
		}
		events = append(events, e)
	}
}

// bodyRecorder keeps a copy of the last response body, to show answers that carry no event.
type bodyRecorder struct {
	next http.RoundTripper
	last []byte
}

func (r *bodyRecorder) reset() { r.last = nil }

func (r *bodyRecorder) body() string { return string(r.last) }

func (r *bodyRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.last = body
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "cesend:", err)
	os.Exit(2)
}
