package workerapp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/shipline/shipline/workflows"
)

// SearchAttributes returns the custom search attributes Shipline's workflows
// set, by name, with their types.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKey{
		workflows.ProjectKey, workflows.VersionKey, workflows.ActorKey, workflows.FabricKey,
	} {
		out[k.GetName()] = k.GetValueType()
	}
	return out
}

// EnsureSearchAttributes registers Shipline's search attributes in namespace
// when they are missing, through the OperatorService. An attribute that
// already exists with the right type is left alone. When the client may not
// list or add search attributes (a managed cluster, restricted credentials)
// it logs a warning naming the attributes an admin must add and returns nil;
// an attribute registered with another type is an error.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, logger *zap.Logger) error {
	if logger == nil {
		logger = zap.NewNop()
	}
	want := SearchAttributes()
	names := slices.Sorted(maps.Keys(want))

	list, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		if lacksPermission(err) {
			warnUnchecked(logger, namespace, names, err)
			return nil
		}
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}

	missing := map[string]enumspb.IndexedValueType{}
	for _, name := range names {
		got, ok := list.GetCustomAttributes()[name]
		if !ok {
			missing[name] = want[name]
			continue
		}
		if got != want[name] {
			return fmt.Errorf("search attribute %s in namespace %s has type %s, Shipline needs %s: "+
				"remove it (temporal operator search-attribute remove --name %s) and restart the worker",
				name, namespace, got, want[name], name)
		}
	}
	if len(missing) == 0 {
		return nil
	}

	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	switch {
	case err == nil:
		logger.Info("registered search attributes", zap.String("namespace", namespace),
			zap.Strings("attributes", slices.Sorted(maps.Keys(missing))))
		return nil
	case errors.As(err, &exists):
		return nil // another worker registered them first
	case lacksPermission(err):
		warnUnchecked(logger, namespace, slices.Sorted(maps.Keys(missing)), err)
		return nil
	}
	return fmt.Errorf("add search attributes %v to namespace %s: %w", slices.Sorted(maps.Keys(missing)), namespace, err)
}

// lacksPermission tells whether err means this client may not manage search
// attributes (rather than that something is broken).
func lacksPermission(err error) bool {
	var (
		denied *serviceerror.PermissionDenied
		unimpl *serviceerror.Unimplemented
	)
	return errors.As(err, &denied) || errors.As(err, &unimpl)
}

func warnUnchecked(logger *zap.Logger, namespace string, names []string, err error) {
	want := SearchAttributes()
	needed := make([]string, len(names))
	for i, n := range names {
		needed[i] = n + "=" + want[n].String()
	}
	logger.Warn("cannot check or register Shipline's search attributes: ask a Temporal admin to add them "+
		"(temporal operator search-attribute create --namespace NS --name NAME --type TYPE), "+
		"or deployment history queries will fail",
		zap.String("namespace", namespace), zap.Strings("attributes", needed), zap.Error(err))
}
