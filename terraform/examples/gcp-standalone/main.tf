# push-pools with no orchestrator: the embedded store. On Cloud Functions its file lives on one instance's
# in-memory disk, so this suits a trial of the wiring (webhook → Cloud Run job), not production: keep a single
# instance, and expect pools and runs to vanish when the instance is recycled. Use gcp-prefect for real work.

module "push_pools" {
  source = "../../modules/gcp"

  project_id          = var.project_id
  region              = var.region
  function_source_zip = var.function_source_zip
  orchestrator        = "local"

  max_instances = 1
}
