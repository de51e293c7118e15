# Identities and least-privilege grants.
#
# - function: what both functions run as. A custom role with exactly the Cloud Run permissions push-pools calls
#   (no roles/run.developer: it could also update, get IAM of, or delete any job or service), and
#   iam.serviceAccountUser on the jobs' service account only, so it can start jobs as that account and no other.
# - jobs: what the Cloud Run jobs run as. It may read the Prefect secrets; grant it what your flows need.
# - push: the identity Pub/Sub signs push requests with; the only one allowed to invoke the Pub/Sub handler.

locals {
  # Every Cloud Run call the backend makes (push_pools/platforms/gcp/backend.py), and the permission it needs.
  cloud_run_permissions = [
    "run.executions.cancel",     # CancelExecution
    "run.executions.get",        # GetExecution: the tick's status reconcile
    "run.executions.list",       # ListExecutions: adopting a resubmitted run's execution; the sweep's running check
    "run.jobs.create",           # CreateJob: once per pool and template
    "run.jobs.delete",           # DeleteJob: the sweep of idle jobs
    "run.jobs.get",              # GetJob: a new instance finds an existing job
    "run.jobs.list",             # ListJobs: the sweep
    "run.jobs.run",              # RunJob: one per run
    "run.jobs.runWithOverrides", # RunJob carries each run's env, args and timeout
    "run.operations.get",        # polling CreateJob's long-running operation
    "run.tasks.list",            # ListTasks: a failed execution's exit code and log link
  ]

  prefect_secret_ids = compact([var.prefect_api_key_secret_id, var.prefect_api_auth_string_secret_id])

  function_secret_ids = concat([local.webhook_secret_id], local.prefect_secret_ids)
}

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-fn"
  display_name = "push-pools functions"
  description  = "Runs the push-pools webhook and Pub/Sub functions: starts, watches, cancels and sweeps Cloud Run jobs."

  # On a fresh project, the IAM API must be enabled first.
  depends_on = [google_project_service.apis]
}

resource "google_service_account" "jobs" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-jobs"
  display_name = "push-pools Cloud Run jobs"
  description  = "Identity of the flow runs' Cloud Run jobs (the pools' service_account_name)."

  # On a fresh project, the IAM API must be enabled first.
  depends_on = [google_project_service.apis]
}

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "push-pools Pub/Sub push"
  description  = "Signs Pub/Sub push requests to the push-pools Pub/Sub function."

  # On a fresh project, the IAM API must be enabled first.
  depends_on = [google_project_service.apis]
}

resource "google_project_iam_custom_role" "dispatcher" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_cloud_run_dispatcher"
  title       = "push-pools Cloud Run dispatcher"
  description = "Exactly the Cloud Run calls push-pools makes: run jobs with overrides, read and cancel executions, create and sweep its jobs."
  permissions = local.cloud_run_permissions
  stage       = "GA"

  # On a fresh project, the IAM API must be enabled first.
  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "function_dispatches" {
  # Jobs are created at run time under names derived from their templates, so the grant is on the project.
  project = var.project_id
  role    = google_project_iam_custom_role.dispatcher.id
  member  = google_service_account.function.member
}

resource "google_service_account_iam_member" "function_acts_as_jobs" {
  service_account_id = google_service_account.jobs.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function.member
}

resource "google_secret_manager_secret_iam_member" "function_reads" {
  for_each = toset(local.function_secret_ids)

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member

  depends_on = [google_secret_manager_secret.webhook]
}

resource "google_secret_manager_secret_iam_member" "jobs_read" {
  for_each = toset(local.prefect_secret_ids)

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.jobs.member
}

# ---- who may invoke the functions -----------------------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "push_invokes_pubsub" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this["pubsub"].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

resource "google_cloud_run_v2_service_iam_member" "webhook_invokers" {
  for_each = var.enable_webhook ? toset(var.webhook_public ? ["allUsers"] : var.webhook_invokers) : toset([])

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this["webhook"].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}

# ---- the Pub/Sub service agent --------------------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_forwards_dead_letters" {
  project      = var.project_id
  subscription = google_pubsub_subscription.requests.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_service_account_iam_member" "agent_signs_push_tokens" {
  # Needed in projects created before April 2021; harmless after.
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
