# A monthly cost budget for the account with two e-mail alarms: forecast to pass 80%, and actual
# spend past 100%. Budgets are free for the first two per account. It covers the whole account
# (a filter on the hpcstack:cluster tag works only once that tag is activated as a cost
# allocation tag in the Billing console).

resource "aws_budgets_budget" "monthly" {
  count        = var.monthly_budget_usd > 0 ? 1 : 0
  name         = "${local.name}-monthly"
  budget_type  = "COST"
  limit_amount = tostring(var.monthly_budget_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = 80
    threshold_type             = "PERCENTAGE"
    notification_type          = "FORECASTED"
    subscriber_email_addresses = [var.budget_email]
  }

  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = 100
    threshold_type             = "PERCENTAGE"
    notification_type          = "ACTUAL"
    subscriber_email_addresses = [var.budget_email]
  }

  lifecycle {
    precondition {
      condition     = var.budget_email != ""
      error_message = "Set aws.budget_email (budget_email) to get the budget alarm."
    }
  }
}
