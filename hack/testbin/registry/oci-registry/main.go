// Command oci-registry is a test tool: an in-memory OCI registry that serves the referrers API
// (go-containerregistry's pkg/registry with WithReferrersSupport), on one address, optionally
// over TLS and behind HTTP basic auth. test_cluster::registry starts it.
//
// Every request is logged to stderr as one line, before the response's first byte is sent:
//
//	2006/01/02 15:04:05 GET /v2/repo/blobs/sha256:… 200
//
// so a test can tell from the registry's own log which blobs a client fetched. The library's
// own messages go to stderr too, prefixed "ggcr: " so that they never read as a request.
//
// Two gaps of the library against the OCI distribution spec 1.1 are closed here, because the
// clients under test decide by them:
//   - a manifest pushed with a subject is answered with the OCI-Subject header (a client that
//     does not see it also writes the referrers tag schema, and the referrers API would then go
//     untested);
//   - the referrers list gives each referrer's artifactType (the library gives its config's
//     media type, application/vnd.oci.empty.v1+json for an artifact) and applies the
//     artifactType filter, answering OCI-Filters-Applied.
//
// Usage: oci-registry --address 127.0.0.1:PORT [--tls-cert F --tls-key F] [--auth-file F]
// where the auth file holds one line "user:password".
package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	address := flag.String("address", "127.0.0.1:5000", "host:port to listen on")
	tlsCert := flag.String("tls-cert", "", "PEM certificate chain; with --tls-key, serve HTTPS")
	tlsKey := flag.String("tls-key", "", "PEM private key of --tls-cert")
	authFile := flag.String("auth-file", "", `file holding one line "user:password"; every request must carry it as basic auth`)
	flag.Parse()
	if (*tlsCert == "") != (*tlsKey == "") {
		log.Fatal("oci-registry: --tls-cert and --tls-key go together")
	}

	var handler http.Handler = registry.New(
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(os.Stderr, "ggcr: ", log.LstdFlags)),
	)
	handler = referrersSpec(handler)
	if *authFile != "" {
		raw, err := os.ReadFile(*authFile)
		if err != nil {
			log.Fatalf("oci-registry: %v", err)
		}
		user, password, ok := strings.Cut(strings.TrimSpace(string(raw)), ":")
		if !ok || user == "" {
			log.Fatalf("oci-registry: %s must hold one line user:password", *authFile)
		}
		handler = basicAuth(handler, user, password)
	}
	handler = logRequests(handler, log.New(os.Stderr, "", log.LstdFlags))

	server := &http.Server{Addr: *address, Handler: handler}
	log.Printf("oci-registry: listening on %s (tls %t, auth %t, referrers API on)", *address, *tlsCert != "", *authFile != "")
	var err error
	if *tlsCert != "" {
		err = server.ListenAndServeTLS(*tlsCert, *tlsKey)
	} else {
		err = server.ListenAndServe()
	}
	log.Fatalf("oci-registry: %v", err)
}

// loggedResponse logs its request's line when the status is set, before the response's first
// byte: a client that has seen the answer finds the request in the log.
type loggedResponse struct {
	http.ResponseWriter
	logLine func(status int)
	status  int
}

func (s *loggedResponse) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		s.logLine(code)
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *loggedResponse) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// logRequests logs "METHOD URI STATUS" once per request.
func logRequests(next http.Handler, l *log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &loggedResponse{ResponseWriter: w, logLine: func(status int) {
			l.Printf("%s %s %d", r.Method, r.URL.RequestURI(), status)
		}}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			// Nothing written: net/http answers 200 with an empty body.
			rec.WriteHeader(http.StatusOK)
		}
	})
}

// basicAuth answers 401 with a Basic challenge unless the request carries user:password.
func basicAuth(next http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
		if !ok || !userOK || !passOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="oci-registry"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// pathParts splits /v2/<repo>/<kind>/<reference> into repo and kind.
func pathParts(path string) (repo, kind string, ok bool) {
	elems := strings.Split(strings.TrimPrefix(path, "/v2/"), "/")
	if !strings.HasPrefix(path, "/v2/") || len(elems) < 3 {
		return "", "", false
	}
	n := len(elems)
	return strings.Join(elems[:n-2], "/"), elems[n-2], true
}

// referrersSpec closes the two gaps named in the package comment.
func referrersSpec(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, kind, ok := pathParts(r.URL.Path)
		switch {
		case ok && kind == "manifests" && r.Method == http.MethodPut:
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var m struct {
				Subject *struct {
					Digest string `json:"digest"`
				} `json:"subject"`
			}
			if json.Unmarshal(body, &m) == nil && m.Subject != nil && m.Subject.Digest != "" {
				w = &subjectHeader{ResponseWriter: w, subject: m.Subject.Digest}
			}
			next.ServeHTTP(w, r)
		case ok && kind == "referrers" && r.Method == http.MethodGet:
			referrers(next, w, r, repo)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// subjectHeader adds OCI-Subject to a successful manifest push.
type subjectHeader struct {
	http.ResponseWriter
	subject string
	done    bool
}

func (s *subjectHeader) WriteHeader(code int) {
	if !s.done && code == http.StatusCreated {
		s.Header().Set("OCI-Subject", s.subject)
	}
	s.done = true
	s.ResponseWriter.WriteHeader(code)
}

// referrers answers the library's referrers list with each referrer's own artifactType and the
// artifactType filter applied. The manifests are read back through the library's handler.
func referrers(next http.Handler, w http.ResponseWriter, r *http.Request, repo string) {
	inner := httptest.NewRecorder()
	next.ServeHTTP(inner, r)
	var index struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Manifests     []map[string]any `json:"manifests"`
	}
	if inner.Code != http.StatusOK || json.Unmarshal(inner.Body.Bytes(), &index) != nil {
		copyResponse(w, inner)
		return
	}
	want := r.URL.Query().Get("artifactType")
	kept := []map[string]any{}
	for _, desc := range index.Manifests {
		digest, _ := desc["digest"].(string)
		get := httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/manifests/"+digest, nil)
		got := httptest.NewRecorder()
		next.ServeHTTP(got, get)
		var m struct {
			ArtifactType string `json:"artifactType"`
		}
		if got.Code == http.StatusOK && json.Unmarshal(got.Body.Bytes(), &m) == nil && m.ArtifactType != "" {
			desc["artifactType"] = m.ArtifactType
		}
		if want == "" || desc["artifactType"] == want {
			kept = append(kept, desc)
		}
	}
	index.Manifests = kept
	body, err := json.Marshal(index)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if want != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", index.MediaType)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}
