# ${project.name} ${release.version} ${var.schema} ${var.catalog}
x = "${artifact.score_churn}"   # not a pipeline of this job
y = "${release.date}" + "${var.cluster_size}"
z = "${}" + "${ release.version }" + "$${literal}"
w = "${var.schema
