package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/shipline/shipline/activities"
)

// ListReleases fetches a project's remote and lists its release tags, marking
// the ones Shipline created (their message carries TagTrailer). It backs
// `shipline releases --refresh`, so tags made outside Shipline show up too.
func ListReleases(ctx workflow.Context, in ListReleasesInput) (ListReleasesOutput, error) {
	var settings activities.ProjectSettings
	if err := workflow.ExecuteActivity(shortActivity(ctx), configActs.Project, activities.ProjectInput{Project: in.Project}).Get(ctx, &settings); err != nil {
		return ListReleasesOutput{}, err
	}
	var tags activities.ListTagsOutput
	if err := workflow.ExecuteActivity(gitActivity(ctx), gitActs.ListTags, activities.ListTagsInput{Project: in.Project, Fetch: true}).Get(ctx, &tags); err != nil {
		return ListReleasesOutput{}, err
	}
	out := ListReleasesOutput{Tags: make([]RemoteTag, 0, len(tags.Tags))}
	for _, t := range tags.Tags {
		out.Tags = append(out.Tags, RemoteTag{
			Version: t.Name, Commit: t.Commit, Creator: t.Creator, Created: t.Created,
			Shipline: t.Annotated && IsShiplineTag(t.Message, in.Project, t.Name),
		})
	}
	return out, nil
}
