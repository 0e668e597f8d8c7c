# Texts the server writes for people, in English. Every key here must also be in
# zh-CN.ftl (a test checks both ways). Variables: { $name }.

## Verification codes (SMS and e-mail)
code-text = [{ $mall }] Your verification code is { $code }. It expires in { $minutes } minutes.

## In-app messages
expiry-reminder-title = { $points } expiring soon
expiry-reminder-body = { $amount } { $points } will expire on { $at }.
order-update-title = Order { $order_no }
order-update-body = Your order { $order_no } is now { $status }.
shipment-update-body = Shipment update: { $status } { $description }
level-changed-title = Your level: { $level }
level-changed-body = Your membership level is now { $level }.

## Ledger memos members read in their points history
memo-task = Task reward: { $name }
memo-prize = Lottery prize: { $name }

## Field problems (422 details)
field-required = required
field-chars = { $min } to { $max } characters
field-chars-max = at most { $max } characters
field-between = between { $min } and { $max }
field-range = { $min } to { $max }
field-at-least = at least { $min }
field-at-most = at most { $max }
field-or-more = { $min } or more
field-json-object = a JSON object
field-phone = a phone number: 11-digit mainland mobile, or + and the country code
field-not-future = not in the future

## Order states
order-status-pending-payment = awaiting payment
order-status-pending-review = awaiting review
order-status-pending-shipment = awaiting shipment
order-status-shipped = shipped
order-status-completed = completed
order-status-cancelled = cancelled
order-status-refunded = refunded

## Error messages (by the error's stable code)
error-account-disabled = This account is disabled.
error-account-exists = An account with this phone or e-mail already exists.
error-account-exists-unlinked = An account with this identifier already exists in this mall and is not linked to the alliance.
error-account-linked-elsewhere = This account is already linked to another alliance identity.
error-address-conflict = The address was changed meanwhile; reload and try again.
error-address-not-found = No such address.
error-alliance-identity-taken = This alliance identity is already linked to an account in this mall.
error-alliance-left = This mall left its alliance: shared points can no longer be issued here.
error-alliance-not-found = No such alliance.
error-already-in-alliance = This mall already belongs to an alliance.
error-already-reviewed = This order has been reviewed already.
error-api-key-invalid = The API key is not valid.
error-api-key-not-found = No such API key.
error-bad-signature = The signature does not match.
error-body-too-large = The request body is too large.
error-broadcast-not-found = No such message to members.
error-broadcast-not-scheduled = Only a scheduled message can be cancelled.
error-budget-closed = The mall left the alliance: its issuing budget for shared points is closed.
error-budget-exhausted = The mall's issuing budget for shared points is used up; top it up first.
error-cannot-change-self = You cannot change your own role or status.
error-category-exists = A category with this name already exists.
error-code-invalid = The verification code is wrong, used or expired; request a new one.
error-currency-code-taken = This currency code is already taken.
error-currency-exists = This currency already exists.
error-database-unavailable = The service is briefly unavailable; retry in a few seconds.
error-draw-limit = You have used all your draws for today.
error-email-taken = This e-mail is already in use.
error-expected-json = The request body must be JSON (Content-Type: application/json).
error-file-not-found = No such file.
error-hold-expired = The points hold has expired.
error-hold-not-found = No such points hold.
error-hold-state = The points hold is not in a state that allows this.
error-idempotency-key-invalid = The Idempotency-Key header is not valid.
error-idempotency-key-required = This request needs an Idempotency-Key header.
error-idempotency-key-reused = This Idempotency-Key was used for a different request.
error-identifier-unproven = This phone or e-mail has not been verified yet.
error-illegal-transition = The order cannot do this in its current state.
error-insufficient-points = Not enough points.
error-internal = Something went wrong on our side; it has been logged.
error-invalid-credentials = Wrong account or password.
error-invalid-query = The query string is not valid.
error-left-another-alliance = This mall left another alliance; it can only join that one again.
error-level-required = Your membership level is too low for this.
error-limit-reached = You have reached the limit for this.
error-lock-grant-not-found = No such locked grant.
error-lottery-closed = This lottery is not open.
error-lottery-not-found = No such lottery.
error-malformed-json = The request body is not valid JSON for this operation.
error-member-not-found = No such member.
error-message-not-found = No such message.
error-method-not-allowed = This method is not allowed here.
error-missing-credentials = Sign in first.
error-not-found = Not found.
error-not-in-alliance = This mall is not in an alliance.
error-nothing-to-return = There is nothing left to return.
error-order-not-found = No such order.
error-permission-denied = Your role may not do this.
error-period-closed = This settlement period is closed already.
error-period-not-over = This settlement period is not over yet; close it after it ends.
error-period-order = A later or overlapping period is closed already: periods close in order.
error-period-too-long = The period is too long: analytics cover a bounded number of days (or weeks) at a time; choose fewer.
error-product-not-found = No such product.
error-product-unavailable = This product is not available now.
error-rate-limited = Too many attempts; retry later.
error-refresh-token-invalid = The refresh token is not valid; sign in again.
error-refresh-token-reused = This refresh token was used before; every session of its family is signed out.
error-rule-exists = A rule with this name already exists.
error-rule-not-found = No such rule.
error-rule-archived = The rule is archived: restore it first.
error-backtest-running = A backtest of this mall is running: wait for it to finish.
error-backtest-not-found = No such backtest.
error-scope-missing = The API key lacks the scope for this.
error-script-invalid = The rule script does not compile.
error-segment-exists = A segment with this name exists.
error-segment-not-found = No such segment.
error-server-busy = The server is busy; retry shortly.
error-session-revoked = This session has ended; sign in again.
error-shared-currency-unsupported = This operation cannot move the alliance's shared currency.
error-shared-points-with-cash = Shared points cannot be combined with cash here.
error-slug-taken = This mall address is already taken.
error-sold-out = Sold out.
error-staff-not-found = No such staff member.
error-task-not-found = No such task.
error-tenant-busy = This mall is busy; retry shortly.
error-tenant-not-found = No such mall.
error-tenant-suspended = This mall is suspended.
error-tenant-unavailable = This mall is not available.
error-timeout = The request took too long.
error-too-many-segments = This mall has the most saved segments allowed (200).
error-too-many-tasks = This mall has the most tasks allowed (100 that are not archived).
error-too-many-webhooks = This mall has the most webhook endpoints allowed.
error-unreadable-body = The request body could not be read.
error-token-expired = The access token has expired.
error-token-invalid = The access token is not valid.
error-token-wrong-audience = This token is not meant for this API.
error-too-many-addresses = You have the most addresses allowed.
error-too-many-api-keys = This mall has the most API keys allowed.
error-too-many-images = Too many images.
error-too-many-lots = This spend would draw on more lots than one request may.
error-too-many-rules = This mall has the most rules allowed.
error-transfer-limit = This transfer is over the mall's transfer limit.
error-transfers-disabled = Transfers are turned off in this mall.
error-validation-failed = Some fields are not valid.
error-webhook-delivery-not-found = No such webhook delivery.
error-webhook-disabled = The webhook endpoint is turned off; turn it on first.
error-webhook-not-found = No such webhook endpoint.
error-webview-token-invalid = The sign-in link is not valid.
error-wrong-alliance = This belongs to another alliance.
error-wrong-tenant = This credential belongs to another mall.

## Content (banners, announcements, zones, rule pages)
error-content-not-found = No such content item.
error-content-key-taken = An item of this kind with this key and language exists.
error-too-many-content-items = This mall has the most content items allowed (1000 that are not archived).
error-content-state-invalid = The item cannot make this move of its review (draft → pending review → published; back to draft; archived).
error-content-incomplete = The item is not complete: a banner needs an image, a zone a product, a rule page a text.
error-content-window-invalid = The window ends before it starts.
error-content-link-unsafe = The link must be an http(s) URL or a path of the mall (/…).
error-content-product-unknown = A product of the zone does not exist in this mall.
field-after = after { $other }
field-link = an http(s) URL or a path of the mall (/…), at most 2048 characters
field-products-unknown = no such product: { $ids }
field-content-key = lowercase letters, digits and dashes (1 to 64), not starting with a dash
