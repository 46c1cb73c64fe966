#!/bin/sh
# Builds kube-apiserver and kubectl VERSION from the Go module proxy into
# DIR (outside the repo). `go install k8s.io/kubernetes/cmd/...@VERSION` is
# refused because k8s.io/kubernetes replaces its staging modules
# (k8s.io/api, k8s.io/client-go, ...) with ./staging paths, so this builds
# from a scratch module whose mains call the upstream commands and which
# replaces each staging module with its published v0.MINOR.PATCH tag.
# The version ldflags matter: without them the server reports
# v0.0.0-master, which kubectl and helm cannot parse.
#
# usage: build.sh VERSION DIR   (e.g. build.sh v1.35.4 ~/.cache/parley/kubernetes-v1.35.4)
set -eu
version=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
go=${GO:-go}
staging=v0${version#v1}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir kube-apiserver kubectl
cat >kube-apiserver/main.go <<'GO'
// Command kube-apiserver is the upstream API server.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
cat >kubectl/main.go <<'GO'
// Command kubectl is the upstream client.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO

$go mod init kubernetes-tools >/dev/null 2>&1
# The staging modules are those k8s.io/kubernetes's own go.mod replaces.
gomod=$($go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod"); do
	$go mod edit -replace "$m=$m@$staging"
done
$go mod edit -require "k8s.io/kubernetes@$version"
$go mod tidy

minor=${version#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags="$ldflags -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
mkdir bin
CGO_ENABLED=0 $go build -trimpath -ldflags "$ldflags" -o bin/ ./kube-apiserver ./kubectl
mv bin/kubectl bin/kube-apiserver "$dir"/
