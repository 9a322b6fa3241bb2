package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)

	// ... open the database, bind the port ...
	daemon.SdNotify(false, daemon.SdNotifyReady+"\nSTATUS=serving")

	period, _ := daemon.SdWatchdogEnabled(false) // from WATCHDOG_USEC; 0 without --watchdog
	tick := time.NewTicker(time.Second)
	if period > 0 {
		tick.Reset(period / 2)
	}
	for {
		select {
		case <-tick.C:
			daemon.SdNotify(false, daemon.SdNotifyWatchdog) // still alive
		case <-stop:
			daemon.SdNotify(false, daemon.SdNotifyStopping)
			time.Sleep(200 * time.Millisecond) // finish the requests in flight
			return
		}
	}
}
