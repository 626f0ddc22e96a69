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
