// Command cert-manager-controller is a test tool: cert-manager's controller, built from the
// cert-manager library (github.com/cert-manager/cert-manager, pinned in ../go.mod) for the Helm
// chart's certManager mode test (crates/operator/tests/cert_manager.rs).
//
// Upstream's own main (cmd/controller) is a module of its own that the Go module proxy does not
// serve, so this is a small main over the same library: it runs every controller the blank
// imports below register (Issuers and ClusterIssuers of the SelfSigned and CA kinds,
// Certificates, CertificateRequests and their approver) on one process without leader election.
// ACME, Vault, Venafi and the ingress/gateway shims are left out: the test does not use them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// Each registers its controller with controller.Register.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The issuer kinds the Issuer and ClusterIssuer controllers can set up.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func main() {
	// A flag set of our own: libraries register flags of theirs on flag.CommandLine
	// (controller-runtime its own --kubeconfig).
	fs := flag.NewFlagSet("cert-manager-controller", flag.ExitOnError)
	klog.InitFlags(fs)
	kubeconfig := fs.String("kubeconfig", "", "path to the kubeconfig of the API server")
	namespace := fs.String("namespace", "", "watch only this namespace (default: all)")
	clusterResourceNamespace := fs.String("cluster-resource-namespace", "kube-system",
		"namespace of the Secrets that ClusterIssuers refer to")
	leaderElect := fs.Bool("leader-elect", false, "not supported by this test build: must be false")
	_ = fs.Parse(os.Args[1:])
	if *leaderElect {
		fmt.Fprintln(os.Stderr, "cert-manager-controller: this test build runs without leader election (--leader-elect=false)")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "controller")
	log := logf.FromContext(ctx)

	// The values of upstream's defaults (internal/apis/config/controller/v1alpha1/defaults.go).
	factory, err := controller.NewContextFactory(ctx, controller.ContextOptions{
		Kubeconfig:         *kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		Namespace:          *namespace,
		IssuerOptions: controller.IssuerOptions{
			ClusterResourceNamespace: *clusterResourceNamespace,
		},
		CertificateOptions: controller.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: 60},
	})
	if err != nil {
		log.Error(err, "building the controller context")
		os.Exit(1)
	}

	known := controller.Known()
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	slices.Sort(names)
	log.Info("starting controllers", "controllers", strings.Join(names, ","))
	var wg sync.WaitGroup
	for _, n := range names {
		// Constructing a controller creates the informers it needs, so all of them exist
		// before the factories start below.
		c, err := known[n](factory)
		if err != nil {
			log.Error(err, "creating controller", "controller", n)
			os.Exit(1)
		}
		wg.Go(func() {
			if err := c.Run(5, ctx); err != nil {
				log.Error(err, "controller failed", "controller", n)
				os.Exit(1)
			}
		})
	}
	shared, err := factory.Build()
	if err != nil {
		log.Error(err, "building the shared context")
		os.Exit(1)
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	wg.Wait()
	log.Info("controllers stopped")
}
