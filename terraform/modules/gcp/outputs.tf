output "webhook_url" {
  description = "URL of the webhook function (null when enable_webhook is false). Point Prefect automations' call-webhook actions here."
  value       = try(google_cloudfunctions2_function.this["webhook"].service_config[0].uri, null)
}

output "webhook_secret_id" {
  description = "Secret Manager secret holding the webhook's shared secret (read it with `gcloud secrets versions access latest --secret ID`)."
  value       = local.webhook_secret_id
}

output "pubsub_function_name" {
  description = "Name of the Pub/Sub handler function."
  value       = google_cloudfunctions2_function.this["pubsub"].name
}

output "requests_topic" {
  description = "Pub/Sub topic taking run requests ({\"flow_run_id\": ...}, {\"action\": \"tick\"}), as projects/P/topics/NAME."
  value       = google_pubsub_topic.requests.id
}

output "dead_letter_topic" {
  description = "Pub/Sub topic receiving requests refused max_delivery_attempts times."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Subscription holding dead letters for inspection (`gcloud pubsub subscriptions pull NAME`)."
  value       = google_pubsub_subscription.dead_letter.id
}

output "function_service_account" {
  description = "Email of the functions' service account."
  value       = google_service_account.function.email
}

output "jobs_service_account" {
  description = "Email of the Cloud Run jobs' service account: the pools' service_account_name. Grant it what your flows need."
  value       = google_service_account.jobs.email
}

output "dispatcher_role" {
  description = "Custom role holding exactly the Cloud Run permissions push-pools uses."
  value       = google_project_iam_custom_role.dispatcher.id
}

output "pool_variables" {
  description = "Job variable defaults for a cloud-run pool deployed with this module."
  value = merge(
    {
      project              = var.project_id
      region               = var.region
      service_account_name = google_service_account.jobs.email
    },
    var.prefect_api_key_secret_id != null ? { prefect_api_key_secret = { secret = var.prefect_api_key_secret_id, version = "latest" } } : {},
    var.prefect_api_auth_string_secret_id != null ? { prefect_api_auth_string_secret = { secret = var.prefect_api_auth_string_secret_id, version = "latest" } } : {},
  )
}

output "pool_create_args" {
  description = "Ready arguments for `push-pool create NAME --type cloud-run ...` (shell-quoted)."
  value = join(" ", [
    for name, value in merge(
      {
        project              = var.project_id
        region               = var.region
        service_account_name = google_service_account.jobs.email
      },
      var.prefect_api_key_secret_id != null ? { prefect_api_key_secret = jsonencode({ secret = var.prefect_api_key_secret_id, version = "latest" }) } : {},
      var.prefect_api_auth_string_secret_id != null ? { prefect_api_auth_string_secret = jsonencode({ secret = var.prefect_api_auth_string_secret_id, version = "latest" }) } : {},
    ) : "--set '${name}=${value}'"
  ])
}
