# push-pools for a Prefect server or Prefect Cloud: the executor serves the listed work pools, reading
# PREFECT_API_URL and the API key (from Secret Manager) like a worker would; flow runs' jobs read the same key by
# reference. Prefect automations call the webhook; the tick catches everything else within a minute.

module "push_pools" {
  source = "../../modules/gcp"

  project_id          = var.project_id
  region              = var.region
  function_source_zip = var.function_source_zip

  orchestrator              = "prefect"
  prefect_api_url           = var.prefect_api_url
  prefect_api_key_secret_id = var.prefect_api_key_secret_id
  prefect_work_pools        = var.prefect_work_pools

  labels = { environment = "production" }
}
