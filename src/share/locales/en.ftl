# Recipient pages, English (the reference catalogue: every other language has every id here).
# Text only: the gateway escapes every message for HTML.

## Facts about a document
label-document = Document
label-documents = Documents
label-size = Size
label-type = Type
label-expires = Available until
label-sender = Shared by
label-message = Message from the sender
label-downloads-left = Downloads left
no-expiry = No expiry date
several-documents = { $count } documents
file-upload = File upload
size-bytes = { $n ->
    [one] 1 byte
   *[other] { $n } bytes
}
unit-kib = KiB
unit-mib = MiB
unit-gib = GiB
unit-tib = TiB
local-time-note = Shown in UTC; with JavaScript on, in your own time zone.

## Kinds of file
type-pdf = PDF document
type-jpeg = JPEG image
type-png = PNG image
type-gif = GIF image
type-webp = WebP image
type-svg = SVG image
type-tiff = TIFF image
type-image = Image
type-images = Images
type-word = Word document
type-excel = Excel spreadsheet
type-powerpoint = PowerPoint presentation
type-opendocument = OpenDocument file
type-text = Text file
type-csv = CSV table
type-zip = ZIP archive
type-video = Video
type-audio = Audio file
type-file = File

## Variants of a document
rendition-lowres = Low resolution
rendition-hires = High resolution
rendition-preview = Preview
rendition-print = Print version
rendition-web = Web version
rendition-watermarked = With watermark
action-download = Download
action-view = View
action-download-variant = Download: { $variant }
thumbnail-alt = First page of { $name }

## Error pages
notfound-title = This link does not work
notfound-text = The link may be mistyped, or it has expired, was cancelled or reached its download limit.
notfound-next = Please ask the person who sent it to you for a new link.
status-405-title = This is not possible here
status-405-text = This link can only be opened or downloaded.
status-429-title = Too many requests
status-429-text = This link was opened very often from your network in a short time. Please wait a minute and try again.
status-502-title = The document could not be fetched
status-502-text = The document store could not be reached or did not answer properly. Please try again in a few minutes.
status-503-title = Temporarily unavailable
status-503-text = The service is busy or being maintained. Please try again in a few minutes.
status-504-title = The document store is too slow
status-504-text = The document store did not answer in time. Please try again in a few minutes.
status-other-title = Something went wrong
status-other-text = Your request could not be completed. Please try again later; if it keeps happening, tell the person who sent you the link.
bad-request-title = The request could not be read
bad-request-next = Please open the link again from the message you received.
not-allowed-title = Not allowed here
gone-title = The document changed or was removed
gone-text = This document was changed or removed since it was shared with you. Please ask the person who sent it to you for a new link.
form-unreadable-title = The form could not be read
form-unreadable-text = Please go back, reload the page and try again.
form-expired-title = This form has expired
form-expired-text = Forms work for an hour. Please reload the page and try again.
form-spent-title = This form was already sent
form-spent-text = Please reload the page and try again.

## Password
password-title = This document is protected by a password
password-label = Password
password-continue = Continue
password-wrong = That password is not right. Please try again.
password-throttled = Too many wrong passwords were tried from your network address. Please wait 15 minutes and try again.
password-needs-work = This link is under heavy guessing right now, so your browser must do a few seconds of work before the password is checked (JavaScript is needed for now). Please enter the password again.
password-bad-proof = The form could not be checked. Please enter the password again.
pow-note = Many wrong passwords were tried on this link lately, so your browser does a few seconds of work before the password is checked.
pow-noscript = This link is under heavy guessing right now. For now it can only be opened with JavaScript turned on: please turn it on and reload this page, or try again later.
pow-ready = Your browser is ready.
pow-checking = Checking your browser: this takes a few seconds…

## Landing page
landing-one-title = A document was shared with you
landing-many-title = Documents were shared with you
landing-upload-title = Send files
landing-view-only = This browser may view the documents. Downloading needs a verified recipient.
landing-no-documents = There is nothing to download on this link.
upload-heading = Send files
upload-drop = Drop files here, or choose them
upload-folder = Or choose a whole folder
upload-button = Upload
upload-expected = Expected files: { $expected }. Still to send: { $remaining }.
upload-all-received = { $expected ->
    [one] The expected file was received. Thank you!
   *[other] All { $expected } expected files were received. Thank you!
}
upload-limit-size = Up to { $size } per file.
upload-limit-types = Accepted types: { $types }.
upload-limit-no-overwrite = A file whose name is already taken is refused.
upload-progress = Upload progress
upload-sending = Sending…
upload-done = Sent
upload-failed-file = Not sent
upload-complete-title = Upload complete
upload-partial-title = Upload partly complete
upload-failed-title = Upload failed
upload-received = Received:
back = Back

## Devices and codes
confirm-text = Opening it here makes this browser the one verified for this link.
confirm-button = Open the document in this browser
verify-title = Verify this browser
send-code-first = To open this document, we will send a 6-digit code to { $email }.
send-code-other = This link was already opened in another browser. To open it here, we will send a 6-digit code to { $email }.
send-code-button = Send me a code
code-title = Enter your code
code-sent = A 6-digit code was mailed to { $email }. It works in any browser you open this link in.
code-valid-until = Valid until
code-label = 6-digit code
code-verify = Verify
code-no-mail = No mail? It may take a minute to arrive, or we can send the same code again.
code-resend = Send the code again
code-resend-throttled = A code was sent moments ago. Please use the code from that mail, or wait a little before asking again.
code-mail-cap = No new mail was sent: { $count } codes were already mailed to { $email } in the last hour.
code-mail-cap-current = Please enter the code from the latest of those mails.
code-mail-cap-later = Please try again later.
code-mail-failed = The code could not be mailed just now. Please try again in a few minutes.
code-expired = That code has expired or was used. Please ask for a new one.
code-discarded = Too many wrong codes were tried: that code no longer works. Please ask for a new one.
code-wrong = That code is not right. Please check it and try again.
code-too-many-title = Too many wrong codes
code-too-many-text = Too many wrong codes were tried in this browser or from your network address. Please open the link in another browser, or wait until the code expires (within the hour) and ask for a new one.
code-last-try-title = That code is not right
code-last-try-text = That code is not right, and it no longer works in this browser after five tries. Please open the link in another browser, or wait until the code expires (within the hour) and ask for a new one.
no-codes-title = This browser cannot be verified
no-codes-text = This link can no longer verify new browsers: too many wrong codes were tried on it. Browsers verified before keep working.
ask-sender-named = Please ask { $sender } for a new link.
ask-sender = Please ask the person who sent it to you for a new link.
recipient-browser-only = This link is for a named recipient and must be opened in a web browser.

## Reviews
review-closed-title = Please open the link again
review-closed-text = The checks of this link must be passed before a review can be sent.
decision-recorded-title = Decision recorded
decision-recorded-text = Thank you: your decision was recorded.
comment-sent-title = Comment sent
comment-sent-text = Thank you: your comment was recorded.
review-heading = Review
review-your-decision = Your decision
review-approved = Approved
review-rejected = Rejected
review-comment-label = Comment
review-send-comment = Send comment
review-decision-label = Comment on your decision (optional)
review-final = A decision is final.
review-approve = Approve
review-reject = Reject
review-not-granted-title = Not possible
review-not-granted-text = This link does not allow that.
review-empty-title = Nothing to send
review-empty-text = Please write a comment first.
review-too-long-title = Comment too long
review-too-long-text = A comment may have at most { $max } characters.
review-too-many-title = Too many comments
review-too-many-text = No more comments can be taken for now. Please try again later.
review-decided-title = Already decided
review-decided-text = A decision was recorded already and cannot be changed.
upload-err-none = No file was chosen. Please choose one or more files.
upload-err-bad = The upload could not be read. Please reload the page and try again.
upload-err-too-large = The file is larger than this link accepts (at most { $size } per file).
upload-err-type = Files of type { $type } are not accepted by this link.
upload-err-exists = A file named “{ $name }” already exists. Please rename it and try again.
upload-err-busy = A file named “{ $name }” is being uploaded right now. Please try again later or rename it.
upload-err-full = This link has received all the files it expects ({ $expected }).
upload-err-broken = The upload broke off before the file was complete. Please try again.
upload-err-slow = The upload was too slow and was stopped. Please try again on a faster connection.
upload-err-store = The document store did not take the file. Please try again in a few minutes.
not-granted-upload = This link does not accept uploads.
not-granted-open = This link does not allow opening its documents.
not-granted-original = This link does not allow downloading the original.
not-granted-view = This link does not allow viewing documents in the browser.
not-granted-rendition = This link does not allow downloading that version of the document.
not-granted-next = If you need it, ask the person who sent you the link.

## Documents the gateway prepares (page images, the viewer, low-resolution copies)
render-busy-title = Busy right now
render-busy-text = Too many documents are being prepared at the moment. Please try again in a few seconds.
render-refused-title = This document cannot be shown
render-refused-text = This document cannot be shown in the browser: it is not a PDF or an image the gateway can read, or it is too large. Please ask the person who sent it to you for another format.
render-limit-title = This document cannot be shown
render-limit-text = Preparing this document took longer or needed more memory than allowed. Please ask the person who sent it to you for a smaller version.
render-failed-title = The document could not be prepared
render-failed-text = The document could not be fetched or prepared. Please try again in a few minutes.
viewer-zoom = Zoom
viewer-page = Page { $page } of { $pages }
