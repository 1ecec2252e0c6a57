package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GOOSPKG is the module whose goos overlay the TamaGo toolchain links in.
const GOOSPKG = "github.com/usbarmory/tamago"

// ImagePackage is the image main, relative to the module root.
const ImagePackage = "./cmd/musqratt-image"

// Toolchain returns the command that runs the TamaGo go command, or an error
// saying why there is none. $TAMAGO (a TamaGo distribution's bin/go) wins;
// otherwise the go.mod tool `go tool tamago` is used if the TamaGo
// distribution it would run is already built in the user cache. Toolchain
// never downloads: the tamago tool would clone tamago-go from GitHub.
func Toolchain(ctx context.Context, moduleDir string) (string, error) {
	if t := os.Getenv("TAMAGO"); t != "" {
		if _, err := os.Stat(t); err != nil {
			return "", fmt.Errorf("TAMAGO=%s: %w", t, err)
		}
		return t, nil
	}
	ver, err := goOutput(ctx, moduleDir, "list", "-m", "-f", "{{.Version}}", GOOSPKG)
	if err != nil {
		return "", fmt.Errorf("tamago module version: %w", err)
	}
	if strings.Contains(ver, "-") {
		return "", fmt.Errorf("tamago module version %s is not a release; set TAMAGO", ver)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dist := filepath.Join(cache, "tamago-go", "tamago-go"+strings.TrimPrefix(ver, "v"))
	if _, err := os.Stat(filepath.Join(dist, "bin", "go")); err != nil {
		return "", fmt.Errorf("TamaGo toolchain %s not built in %s (see docs/bare-metal.md, \"Building the TamaGo toolchain offline\")", ver, dist)
	}
	tool, err := goOutput(ctx, moduleDir, "tool", "-n", GOOSPKG+"/cmd/tamago")
	if err != nil {
		return "", fmt.Errorf("go tool -n tamago: %w", err)
	}
	return tool, nil
}

// ModuleDir returns the root of the main module containing dir.
func ModuleDir(ctx context.Context, dir string) (string, error) {
	gomod, err := goOutput(ctx, dir, "env", "GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("%s is not in a module", dir)
	}
	return filepath.Dir(gomod), nil
}

// Build builds the image for m into out with the TamaGo toolchain tamago,
// adding ldflags (e.g. -X settings) to the linker's text and RAM start. An
// ldflag with blank space in it (-X 'main.ExtraConfig=bridge out a/# 1') is
// quoted for the go command.
func Build(ctx context.Context, tamago, moduleDir string, m Machine, out string, ldflags ...string) error {
	flags := []string{"-T", m.TextStart, "-R", m.RAMStart}
	for _, f := range ldflags {
		q, err := quoteFlag(f)
		if err != nil {
			return err
		}
		flags = append(flags, q)
	}
	cmd := exec.CommandContext(ctx, tamago, "build", "-tags", m.Board, "-trimpath",
		"-ldflags", strings.Join(flags, " "), "-o", out, ImagePackage)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOOS=tamago", "GOOSPKG="+GOOSPKG, "GOARCH="+m.GOARCH)
	if m.GOARM != "" {
		cmd.Env = append(cmd.Env, "GOARM="+m.GOARM)
	}
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s image: %v\n%s", m.Board, err, stderr.Bytes())
	}
	return nil
}

// quoteFlag quotes f for the go command's -ldflags, which it splits at blank space
// outside single or double quotes (cmd/internal/quoted).
func quoteFlag(f string) (string, error) {
	switch {
	case !strings.ContainsAny(f, " \t\n\r'\""):
		return f, nil
	case !strings.Contains(f, "'"):
		return "'" + f + "'", nil
	case !strings.Contains(f, `"`):
		return `"` + f + `"`, nil
	}
	return "", fmt.Errorf("ldflag %q: has both quote characters; the go command cannot take it", f)
}

func goOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
