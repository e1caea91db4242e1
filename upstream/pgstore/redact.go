package pgstore

import (
	"net/url"
	"regexp"
	"strings"
)

// Redact returns dsn with its passwords replaced by "xxxxx", for messages
// and logs: the user info of a URL (postgres:// or any other scheme), a
// password= query parameter, and password=… in a keyword/value DSN. It
// works on DSNs that do not parse too.
func Redact(dsn string) string {
	s, _ := redact(dsn)
	return s
}

const mask = "xxxxx"

var (
	kvPassword    = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)
	queryPassword = regexp.MustCompile(`(?i)([?&]password=)([^&#]*)`)
	urlForm       = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)
)

// redact is Redact that also returns the passwords it hid (as written and
// decoded), to scrub them from messages that might quote them.
func redact(dsn string) (string, []string) {
	var secrets []string
	hide := func(re *regexp.Regexp, s string) string {
		return re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatch(m)
			if sub[2] != "" {
				secrets = append(secrets, sub[2])
				if v, err := url.QueryUnescape(sub[2]); err == nil && v != sub[2] {
					secrets = append(secrets, v)
				}
				if v := strings.Trim(sub[2], "'"); v != sub[2] && v != "" {
					secrets = append(secrets, v)
				}
			}
			return sub[1] + mask
		})
	}
	if !urlForm.MatchString(dsn) { // any scheme: a mistyped one too
		return hide(kvPassword, dsn), secrets
	}
	scheme, rest, _ := strings.Cut(dsn, "://")
	// The user info ends at the last '@' before the path, query or
	// fragment that follows the first '@' (a password written without
	// escapes may hold any of '@', '/', '?', '#').
	if first := strings.Index(rest, "@"); first >= 0 {
		end := len(rest)
		if i := strings.IndexAny(rest[first:], "/?#"); i >= 0 {
			end = first + i
		}
		at := strings.LastIndex(rest[:end], "@")
		user, pw, hasPW := strings.Cut(rest[:at], ":")
		if hasPW && pw != "" {
			secrets = append(secrets, pw)
			if v, err := url.PathUnescape(pw); err == nil && v != pw {
				secrets = append(secrets, v)
			}
			rest = user + ":" + mask + rest[at:]
		}
	}
	return scheme + "://" + hide(queryPassword, rest), secrets
}

// redactedError is err with every secret hidden from its message.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// scrub returns err with the secrets replaced by the mask in its message.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, mask)
		}
	}
	return &redactedError{msg: msg, err: err}
}
