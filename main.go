// Command synctray keeps user actions in a durable local outbox and sends
// them upstream when the connection allows. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"synctray/cli"
)

func main() {
	attachConsole()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
