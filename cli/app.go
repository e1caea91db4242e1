package cli

import (
	"strings"

	"synctray/localserver"
)

// appUsage is the help of --app; it names the reserved paths from the
// list the host itself checks.
func appUsage() string {
	var names []string
	for _, p := range localserver.ReservedPaths {
		names = append(names, p.Name())
	}
	return "serve the web app in this directory at / instead of the bundled one, with index.html as the navigation fallback; " +
		"it may not have a top-level entry named " + strings.Join(names, ", ") + " (the host's own paths)"
}
