# ${var.cluster_size} ${var.schema}
