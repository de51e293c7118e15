# push-pools on Google Cloud: two 2nd-gen functions from one source (the webhook and the Pub/Sub handler), a
# request topic with a push subscription and a dead-letter topic, a Cloud Scheduler tick, and Secret Manager
# secrets read by the platform into the functions' environment. Identities and grants are in iam.tf.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  apis = [
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com", # project IAM grants

    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "artifactregistry.googleapis.com",
  ]

  labels = merge(var.labels, { "managed-by" = "push-pools" })

  # Known at plan time (IAM grants iterate over it); the secret itself is made below when not given.
  webhook_secret_id = coalesce(var.webhook_secret_id, "${var.name_prefix}-webhook-secret")

  # The Pub/Sub service agent delivers to the dead-letter topic and signs push requests' OIDC tokens.
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  environment = merge(
    {
      PUSH_POOL_ORCHESTRATOR                    = var.orchestrator
      PUSH_POOL_HOME                            = "/tmp/push-pools"
      PUSH_POOL_GCP_PROJECT                     = var.project_id
      PUSH_POOL_CLOUD_RUN_LOCATIONS             = jsonencode(["projects/${var.project_id}/locations/${var.region}"])
      PUSH_POOL_CLOUD_RUN_JOB_RETENTION_SECONDS = tostring(var.job_retention_seconds)
      PUSH_POOL_TICK_INTERVAL_SECONDS           = tostring(var.tick_interval_seconds)
      PUSH_POOL_SUBMIT_DEADLINE_SECONDS         = tostring(var.submit_deadline_seconds)
      PUSH_POOL_SUBMIT_ATTEMPTS                 = tostring(var.submit_attempts)
      # An orphan is a run claimed by an instance that died: wait longer than any invocation can last.
      PUSH_POOL_ORPHAN_TIMEOUT_SECONDS = tostring(max(600, 2 * var.function_timeout_seconds))
      PUSH_POOL_PREFECT_WORK_POOLS     = jsonencode(var.prefect_work_pools)
    },
    var.prefect_api_url != null ? { PREFECT_API_URL = var.prefect_api_url } : {},
    var.environment_variables,
  )

  # Secrets the platform reads into both functions' environment when an instance starts.
  orchestrator_secrets = merge(
    var.prefect_api_key_secret_id != null ? { PREFECT_API_KEY = var.prefect_api_key_secret_id } : {},
    var.prefect_api_auth_string_secret_id != null ? { PREFECT_API_AUTH_STRING = var.prefect_api_auth_string_secret_id } : {},
  )

  functions = {
    webhook = {
      enabled  = var.enable_webhook
      ingress  = var.webhook_ingress
      secrets  = merge(local.orchestrator_secrets, { PUSH_POOL_WEBHOOK_SECRET = local.webhook_secret_id })
      describe = "push-pools webhook: Prefect automations and other callers with the shared secret"
    }
    pubsub = {
      enabled  = true
      ingress  = "ALLOW_INTERNAL_ONLY"
      secrets  = local.orchestrator_secrets
      describe = "push-pools Pub/Sub handler: run requests and the Cloud Scheduler tick"
    }
  }
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(local.apis) : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# ---- function source ------------------------------------------------------------------------------------------

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Access logs of a bucket holding only the function's source archive add cost, not insight; Cloud Audit Logs record who changed it.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  versioning {
    enabled = true
  }

  dynamic "encryption" {
    for_each = var.kms_key_name != null ? [var.kms_key_name] : []
    content {
      default_kms_key_name = encryption.value
    }
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 3
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "source" {
  # The name changes with the content, so a new archive redeploys both functions.
  name   = "function-${filemd5(var.function_source_zip)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.function_source_zip
}

# ---- the two functions ----------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:The webhook must take requests from Prefect Cloud's automations on the internet (webhook_ingress, ALLOW_ALL by default), and authenticates each one with the shared secret before reading it; the Pub/Sub function is ALLOW_INTERNAL_ONLY.
  for_each = { for name, function in local.functions : name => function if function.enabled }

  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-${each.key}"
  description = each.value.describe
  labels      = local.labels

  build_config {
    runtime         = "python311"
    entry_point     = each.key
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function.email
    ingress_settings                 = each.value.ingress
    all_traffic_on_latest_revision   = true
    available_memory                 = var.function_memory
    timeout_seconds                  = var.function_timeout_seconds
    max_instance_count               = var.max_instances
    min_instance_count               = 0
    max_instance_request_concurrency = 1
    environment_variables            = local.environment

    dynamic "secret_environment_variables" {
      for_each = each.value.secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = var.secret_version
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.orchestrator != "prefect" || var.prefect_api_url != null
      error_message = "orchestrator = \"prefect\" needs prefect_api_url."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_version.webhook,
    google_secret_manager_secret_iam_member.function_reads,
  ]
}

# ---- Pub/Sub: requests, their push subscription, dead letters -------------------------------------------------

resource "google_pubsub_topic" "requests" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-requests"
  kms_key_name               = var.kms_key_name
  labels                     = local.labels
  message_retention_duration = "86400s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  project      = var.project_id
  name         = "${var.name_prefix}-dead-letter"
  kms_key_name = var.kms_key_name
  labels       = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "requests" {
  project = var.project_id
  name    = "${var.name_prefix}-requests-push"
  topic   = google_pubsub_topic.requests.id
  labels  = local.labels

  # Redelivery waits for the whole invocation: the deadline is the function's timeout.
  ack_deadline_seconds       = var.function_timeout_seconds
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = google_cloudfunctions2_function.this["pubsub"].service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.this["pubsub"].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.retry_maximum_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "dead_letter" {
  # A topic keeps nothing by itself: this subscription holds dead letters until a person reads them.
  project                    = var.project_id
  name                       = "${var.name_prefix}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_seconds}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# ---- the tick -------------------------------------------------------------------------------------------------

resource "google_cloud_scheduler_job" "tick" {
  # Cloud Scheduler publishes with its own service agent; Pub/Sub then pushes with the push service account's
  # OIDC token, so the tick needs no secret and the handler is never public.
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-tick"
  description = "push-pools tick: submit due runs, follow running ones, recover orphans, sweep idle jobs"
  schedule    = var.tick_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.requests.id
    data       = base64encode(jsonencode({ action = "tick" }))
    attributes = { origin = "cloud-scheduler" }
  }

  depends_on = [google_project_service.apis]
}

# ---- secrets --------------------------------------------------------------------------------------------------

resource "random_password" "webhook" {
  count   = var.webhook_secret_id == null ? 1 : 0
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "webhook" {
  count     = var.webhook_secret_id == null ? 1 : 0
  project   = var.project_id
  secret_id = local.webhook_secret_id
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "webhook" {
  count       = var.webhook_secret_id == null ? 1 : 0
  secret      = google_secret_manager_secret.webhook[0].id
  secret_data = random_password.webhook[0].result
}
