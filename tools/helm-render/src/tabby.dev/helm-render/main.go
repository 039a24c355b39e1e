// helm-render: `helm template` for one chart directory, built from Helm v3.13.3's own
// packages (engine, chartutil, chart/loader, strvals, releaseutil, cli/values; copied under
// ../../helm.sh/helm/v3 from github.com/helm/helm at commit
// c8b948945e52abba22ff885446a1486cb5fd3474, Apache-2.0, trims marked `tabby:`). This file is
// the glue that helm's cmd/helm/template.go, pkg/action/install.go (client-only path) and
// pkg/action/action.go (renderResources) do; each step names the function it follows.
//
// Usage: helm-render [flags] NAME CHART_DIR
//
//	-n, --namespace NS     .Release.Namespace (default "default")
//	-f, --values FILE      values file, repeatable, merged in order
//	--set, --set-string, --set-json, --set-file, --set-literal  as helm's
//	--include-crds         print crds/ files first, as they are
//	--api-versions GV      added to .Capabilities.APIVersions, repeatable
//	--kube-version V       .Capabilities.KubeVersion (default v1.28.0, helm v3.13.3's)
//	--is-upgrade           .Release.IsUpgrade instead of IsInstall
//
// Output: what `helm template` prints: "---\n# Source: <path>\n<manifest>\n" per document,
// in helm's install order, then hooks. Exit status 1 with helm's error text on failure.
package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
)

const notesFileSuffix = "NOTES.txt"

type options struct {
	name, chart, namespace string
	values                 values.Options
	includeCRDs, isUpgrade bool
	apiVersions            []string
	kubeVersion            string
}

func parseArgs(args []string) (*options, error) {
	o := &options{namespace: "default"}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch name {
		case "-n", "--namespace":
			o.namespace, err = next()
		case "-f", "--values":
			v, err = next()
			o.values.ValueFiles = append(o.values.ValueFiles, v)
		case "--set":
			v, err = next()
			o.values.Values = append(o.values.Values, v)
		case "--set-string":
			v, err = next()
			o.values.StringValues = append(o.values.StringValues, v)
		case "--set-json":
			v, err = next()
			o.values.JSONValues = append(o.values.JSONValues, v)
		case "--set-file":
			v, err = next()
			o.values.FileValues = append(o.values.FileValues, v)
		case "--set-literal":
			v, err = next()
			o.values.LiteralValues = append(o.values.LiteralValues, v)
		case "--api-versions", "-a":
			v, err = next()
			o.apiVersions = append(o.apiVersions, v)
		case "--kube-version":
			o.kubeVersion, err = next()
		case "--include-crds":
			o.includeCRDs = true
		case "--is-upgrade":
			o.isUpgrade = true
		default:
			if strings.HasPrefix(a, "-") {
				return nil, fmt.Errorf("unknown flag %s", a)
			}
			positional = append(positional, a)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(positional) != 2 {
		return nil, fmt.Errorf("expected NAME and CHART_DIR, got %d arguments", len(positional))
	}
	o.name, o.chart = positional[0], positional[1]
	return o, nil
}

func run(o *options) (string, error) {
	// cmd/helm/install.go runInstall: load the chart, merge the values, check its type.
	chrt, err := loader.Load(o.chart)
	if err != nil {
		return "", err
	}
	vals, err := o.values.MergeValues()
	if err != nil {
		return "", err
	}
	if chrt.Metadata.Type != "" && chrt.Metadata.Type != "application" {
		return "", fmt.Errorf("%s charts are not installable", chrt.Metadata.Type)
	}
	if chrt.Metadata.Deprecated {
		fmt.Fprintln(os.Stderr, "WARNING: This chart is deprecated")
	}
	// pkg/action/install.go RunWithContext, client-only (helm template without --validate).
	if err := chartutil.ProcessDependenciesWithMerge(chrt, vals); err != nil {
		return "", err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	if o.kubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(o.kubeVersion)
		if err != nil {
			return "", fmt.Errorf("invalid kube version '%s': %s", o.kubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	caps.APIVersions = append(caps.APIVersions, o.apiVersions...)
	relOpts := chartutil.ReleaseOptions{
		Name:      o.name,
		Namespace: o.namespace,
		Revision:  1,
		IsInstall: !o.isUpgrade,
		IsUpgrade: o.isUpgrade,
	}
	valuesToRender, err := chartutil.ToRenderValues(chrt, vals, relOpts, caps)
	if err != nil {
		return "", err
	}
	return renderResources(chrt, valuesToRender, caps, o.includeCRDs)
}

// renderResources follows pkg/action/action.go's renderResources (no output dir, no post
// renderer, no cluster), then cmd/helm/template.go's printing of the hooks.
func renderResources(ch *chart.Chart, vals chartutil.Values, caps *chartutil.Capabilities, includeCrds bool) (string, error) {
	b := bytes.NewBuffer(nil)
	if ch.Metadata.KubeVersion != "" {
		if !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
			return "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", ch.Metadata.KubeVersion, caps.KubeVersion.String())
		}
	}
	var e engine.Engine
	files, err := e.Render(ch, vals)
	if err != nil {
		return "", err
	}
	// NOTES.txt is rendered (so its errors count) but not printed.
	for k := range files {
		if strings.HasSuffix(k, notesFileSuffix) {
			delete(files, k)
		}
	}
	hs, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return "", err
	}
	if includeCrds {
		for _, crd := range ch.CRDObjects() {
			fmt.Fprintf(b, "---\n# Source: %s\n%s\n", crd.Filename, string(crd.File.Data[:]))
		}
	}
	for _, m := range manifests {
		fmt.Fprintf(b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	for _, h := range hs {
		fmt.Fprintf(b, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return b.String(), nil
}

func main() {
	o, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(2)
	}
	out, err := run(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}
