package platform

import "sort"

// TeamOf returns the names of the teams user belongs to, sorted.
func (c *Config) TeamOf(user string) []string {
	var teams []string
	for name, t := range c.Teams {
		for _, m := range t.Members {
			if m == user {
				teams = append(teams, name)
				break
			}
		}
	}
	sort.Strings(teams)
	return teams
}

// IsMember reports whether user is a member of team.
func (c *Config) IsMember(team, user string) bool {
	t, ok := c.Teams[team]
	if !ok || user == "" {
		return false
	}
	for _, m := range t.Members {
		if m == user {
			return true
		}
	}
	return false
}

// IsService reports whether user is registered as a service identity
// (users.<user>.service: true).
func (c *Config) IsService(user string) bool { return c.Users[user].Service }

// Services returns the members of team who are service identities, in the
// team's order: they never vote at a gate of that team.
func (c *Config) Services(team string) []string {
	var out []string
	for _, m := range c.Teams[team].Members {
		if c.IsService(m) {
			out = append(out, m)
		}
	}
	return out
}
