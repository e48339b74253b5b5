# Empfängerseiten, Deutsch (jede Nachricht aus en.ftl).

## Angaben zu einem Dokument
label-document = Dokument
label-documents = Dokumente
label-size = Größe
label-type = Art
label-expires = Verfügbar bis
label-sender = Geteilt von
label-message = Nachricht des Absenders
label-downloads-left = Verbleibende Downloads
no-expiry = Kein Ablaufdatum
several-documents = { $count } Dokumente
file-upload = Datei-Upload
size-bytes = { $n ->
    [one] 1 Byte
   *[other] { $n } Bytes
}
unit-kib = KiB
unit-mib = MiB
unit-gib = GiB
unit-tib = TiB
local-time-note = In UTC angegeben; mit JavaScript in Ihrer eigenen Zeitzone.

## Dateiarten
type-pdf = PDF-Dokument
type-jpeg = JPEG-Bild
type-png = PNG-Bild
type-gif = GIF-Bild
type-webp = WebP-Bild
type-svg = SVG-Bild
type-tiff = TIFF-Bild
type-image = Bild
type-images = Bilder
type-word = Word-Dokument
type-excel = Excel-Tabelle
type-powerpoint = PowerPoint-Präsentation
type-opendocument = OpenDocument-Datei
type-text = Textdatei
type-csv = CSV-Tabelle
type-zip = ZIP-Archiv
type-video = Video
type-audio = Audiodatei
type-file = Datei

## Varianten eines Dokuments
rendition-lowres = Niedrige Auflösung
rendition-hires = Hohe Auflösung
rendition-preview = Vorschau
rendition-print = Druckversion
rendition-web = Webversion
rendition-watermarked = Mit Wasserzeichen
action-download = Herunterladen
action-view = Ansehen
action-download-variant = Herunterladen: { $variant }
thumbnail-alt = Erste Seite von { $name }

## Fehlerseiten
notfound-title = Dieser Link funktioniert nicht
notfound-text = Der Link ist vielleicht falsch geschrieben, abgelaufen, widerrufen oder hat sein Download-Limit erreicht.
notfound-next = Bitten Sie die Person, die ihn Ihnen geschickt hat, um einen neuen Link.
status-405-title = Das ist hier nicht möglich
status-405-text = Dieser Link kann nur geöffnet oder heruntergeladen werden.
status-429-title = Zu viele Anfragen
status-429-text = Dieser Link wurde aus Ihrem Netzwerk in kurzer Zeit sehr oft geöffnet. Bitte warten Sie eine Minute und versuchen Sie es erneut.
status-502-title = Das Dokument konnte nicht abgerufen werden
status-502-text = Der Dokumentenspeicher war nicht erreichbar oder hat nicht richtig geantwortet. Bitte versuchen Sie es in ein paar Minuten erneut.
status-503-title = Vorübergehend nicht verfügbar
status-503-text = Der Dienst ist ausgelastet oder wird gewartet. Bitte versuchen Sie es in ein paar Minuten erneut.
status-504-title = Der Dokumentenspeicher ist zu langsam
status-504-text = Der Dokumentenspeicher hat nicht rechtzeitig geantwortet. Bitte versuchen Sie es in ein paar Minuten erneut.
status-other-title = Etwas ist schiefgegangen
status-other-text = Ihre Anfrage konnte nicht ausgeführt werden. Bitte versuchen Sie es später erneut; falls es wieder passiert, sagen Sie es der Person, die Ihnen den Link geschickt hat.
bad-request-title = Die Anfrage konnte nicht gelesen werden
bad-request-next = Bitte öffnen Sie den Link erneut aus der erhaltenen Nachricht.
not-allowed-title = Hier nicht erlaubt
gone-title = Das Dokument wurde geändert oder entfernt
gone-text = Dieses Dokument wurde geändert oder entfernt, seit es mit Ihnen geteilt wurde. Bitten Sie die Person, die es Ihnen geschickt hat, um einen neuen Link.
form-unreadable-title = Das Formular konnte nicht gelesen werden
form-unreadable-text = Bitte gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es erneut.
form-expired-title = Dieses Formular ist abgelaufen
form-expired-text = Formulare gelten eine Stunde. Bitte laden Sie die Seite neu und versuchen Sie es erneut.
form-spent-title = Dieses Formular wurde bereits gesendet
form-spent-text = Bitte laden Sie die Seite neu und versuchen Sie es erneut.

## Passwort
password-title = Dieses Dokument ist durch ein Passwort geschützt
password-label = Passwort
password-continue = Weiter
password-wrong = Dieses Passwort ist nicht richtig. Bitte versuchen Sie es erneut.
password-throttled = Von Ihrer Netzwerkadresse wurden zu viele falsche Passwörter versucht. Bitte warten Sie 15 Minuten und versuchen Sie es erneut.
password-needs-work = Auf diesen Link wird gerade massiv geraten, deshalb muss Ihr Browser einige Sekunden rechnen, bevor das Passwort geprüft wird (dafür ist derzeit JavaScript nötig). Bitte geben Sie das Passwort erneut ein.
password-bad-proof = Das Formular konnte nicht geprüft werden. Bitte geben Sie das Passwort erneut ein.
pow-note = Auf diesem Link wurden zuletzt viele falsche Passwörter versucht, deshalb rechnet Ihr Browser einige Sekunden, bevor das Passwort geprüft wird.
pow-noscript = Auf diesen Link wird gerade massiv geraten. Derzeit lässt er sich nur mit eingeschaltetem JavaScript öffnen: Bitte schalten Sie es ein und laden Sie die Seite neu, oder versuchen Sie es später.
pow-ready = Ihr Browser ist bereit.
pow-checking = Ihr Browser wird geprüft: Das dauert einige Sekunden…

## Startseite
landing-one-title = Ein Dokument wurde mit Ihnen geteilt
landing-many-title = Dokumente wurden mit Ihnen geteilt
landing-upload-title = Dateien senden
landing-view-only = Dieser Browser darf die Dokumente ansehen. Zum Herunterladen ist ein bestätigter Empfänger nötig.
landing-no-documents = Über diesen Link gibt es nichts herunterzuladen.
upload-heading = Dateien senden
upload-drop = Dateien hierher ziehen oder auswählen
upload-folder = Oder einen ganzen Ordner auswählen
upload-button = Hochladen
upload-expected = Erwartete Dateien: { $expected }. Noch zu senden: { $remaining }.
upload-all-received = { $expected ->
    [one] Die erwartete Datei ist angekommen. Vielen Dank!
   *[other] Alle { $expected } erwarteten Dateien sind angekommen. Vielen Dank!
}
upload-limit-size = Bis zu { $size } pro Datei.
upload-limit-types = Erlaubt: { $types }.
upload-limit-no-overwrite = Eine Datei, deren Name schon vergeben ist, wird abgelehnt.
upload-progress = Fortschritt des Hochladens
upload-sending = Wird gesendet…
upload-done = Gesendet
upload-failed-file = Nicht gesendet
upload-complete-title = Hochladen abgeschlossen
upload-partial-title = Hochladen teilweise abgeschlossen
upload-failed-title = Hochladen fehlgeschlagen
upload-received = Erhalten:
back = Zurück

## Geräte und Codes
confirm-text = Wenn Sie es hier öffnen, wird dieser Browser der für diesen Link bestätigte.
confirm-button = Dokument in diesem Browser öffnen
verify-title = Diesen Browser bestätigen
send-code-first = Um dieses Dokument zu öffnen, senden wir einen 6-stelligen Code an { $email }.
send-code-other = Dieser Link wurde bereits in einem anderen Browser geöffnet. Um ihn hier zu öffnen, senden wir einen 6-stelligen Code an { $email }.
send-code-button = Code senden
code-title = Code eingeben
code-sent = Ein 6-stelliger Code wurde an { $email } gesendet. Er funktioniert in jedem Browser, in dem Sie diesen Link öffnen.
code-valid-until = Gültig bis
code-label = 6-stelliger Code
code-verify = Bestätigen
code-no-mail = Keine E-Mail? Sie kann eine Minute brauchen, oder wir senden denselben Code noch einmal.
code-resend = Code erneut senden
code-resend-throttled = Gerade eben wurde ein Code gesendet. Bitte verwenden Sie den Code aus dieser E-Mail oder warten Sie etwas, bevor Sie erneut fragen.
code-mail-cap = Es wurde keine neue E-Mail gesendet: In der letzten Stunde wurden bereits { $count } Codes an { $email } geschickt.
code-mail-cap-current = Bitte geben Sie den Code aus der neuesten dieser E-Mails ein.
code-mail-cap-later = Bitte versuchen Sie es später erneut.
code-mail-failed = Der Code konnte gerade nicht gesendet werden. Bitte versuchen Sie es in ein paar Minuten erneut.
code-expired = Dieser Code ist abgelaufen oder wurde verwendet. Bitte fordern Sie einen neuen an.
code-discarded = Es wurden zu viele falsche Codes versucht: Dieser Code funktioniert nicht mehr. Bitte fordern Sie einen neuen an.
code-wrong = Dieser Code ist nicht richtig. Bitte prüfen Sie ihn und versuchen Sie es erneut.
code-too-many-title = Zu viele falsche Codes
code-too-many-text = In diesem Browser oder von Ihrer Netzwerkadresse wurden zu viele falsche Codes versucht. Bitte öffnen Sie den Link in einem anderen Browser, oder warten Sie, bis der Code abläuft (innerhalb einer Stunde), und fordern Sie einen neuen an.
code-last-try-title = Dieser Code ist nicht richtig
code-last-try-text = Dieser Code ist nicht richtig und funktioniert nach fünf Versuchen in diesem Browser nicht mehr. Bitte öffnen Sie den Link in einem anderen Browser, oder warten Sie, bis der Code abläuft (innerhalb einer Stunde), und fordern Sie einen neuen an.
no-codes-title = Dieser Browser kann nicht bestätigt werden
no-codes-text = Dieser Link kann keine neuen Browser mehr bestätigen: Es wurden zu viele falsche Codes versucht. Bereits bestätigte Browser funktionieren weiter.
ask-sender-named = Bitte bitten Sie { $sender } um einen neuen Link.
ask-sender = Bitte bitten Sie die Person, die ihn Ihnen geschickt hat, um einen neuen Link.
recipient-browser-only = Dieser Link ist für einen bestimmten Empfänger und muss in einem Webbrowser geöffnet werden.

## Prüfungen
review-closed-title = Bitte öffnen Sie den Link erneut
review-closed-text = Die Prüfungen dieses Links müssen bestanden sein, bevor eine Rückmeldung gesendet werden kann.
decision-recorded-title = Entscheidung gespeichert
decision-recorded-text = Danke: Ihre Entscheidung wurde gespeichert.
comment-sent-title = Kommentar gesendet
comment-sent-text = Danke: Ihr Kommentar wurde gespeichert.
review-heading = Prüfung
review-your-decision = Ihre Entscheidung
review-approved = Freigegeben
review-rejected = Abgelehnt
review-comment-label = Kommentar
review-send-comment = Kommentar senden
review-decision-label = Kommentar zu Ihrer Entscheidung (freiwillig)
review-final = Eine Entscheidung ist endgültig.
review-approve = Freigeben
review-reject = Ablehnen
review-not-granted-title = Nicht möglich
review-not-granted-text = Dieser Link erlaubt das nicht.
review-empty-title = Nichts zu senden
review-empty-text = Bitte schreiben Sie zuerst einen Kommentar.
review-too-long-title = Kommentar zu lang
review-too-long-text = Ein Kommentar darf höchstens { $max } Zeichen haben.
review-too-many-title = Zu viele Kommentare
review-too-many-text = Derzeit können keine weiteren Kommentare angenommen werden. Bitte versuchen Sie es später erneut.
review-decided-title = Bereits entschieden
review-decided-text = Eine Entscheidung wurde bereits gespeichert und kann nicht geändert werden.
upload-err-none = Es wurde keine Datei ausgewählt. Bitte wählen Sie eine oder mehrere Dateien.
upload-err-bad = Das Hochladen konnte nicht gelesen werden. Bitte laden Sie die Seite neu und versuchen Sie es erneut.
upload-err-too-large = Die Datei ist größer, als dieser Link annimmt (höchstens { $size } pro Datei).
upload-err-type = Dateien des Typs { $type } nimmt dieser Link nicht an.
upload-err-exists = Eine Datei namens „{ $name }“ gibt es schon. Bitte benennen Sie sie um und versuchen Sie es erneut.
upload-err-busy = Eine Datei namens „{ $name }“ wird gerade hochgeladen. Bitte versuchen Sie es später erneut oder benennen Sie sie um.
upload-err-full = Dieser Link hat alle erwarteten Dateien erhalten ({ $expected }).
upload-err-broken = Das Hochladen brach ab, bevor die Datei vollständig war. Bitte versuchen Sie es erneut.
upload-err-slow = Das Hochladen war zu langsam und wurde beendet. Bitte versuchen Sie es über eine schnellere Verbindung erneut.
upload-err-store = Der Dokumentenspeicher hat die Datei nicht angenommen. Bitte versuchen Sie es in ein paar Minuten erneut.
not-granted-upload = Dieser Link nimmt keine Dateien an.
not-granted-open = Dieser Link erlaubt nicht, seine Dokumente zu öffnen.
not-granted-original = Dieser Link erlaubt nicht, das Original herunterzuladen.
not-granted-view = Dieser Link erlaubt nicht, Dokumente im Browser anzusehen.
not-granted-rendition = Dieser Link erlaubt nicht, diese Fassung des Dokuments herunterzuladen.
not-granted-next = Falls Sie es brauchen, fragen Sie die Person, die Ihnen den Link geschickt hat.

## Dokumente, die das Gateway aufbereitet (Seitenbilder, Betrachter, Kopien in niedriger Auflösung)
render-busy-title = Gerade ausgelastet
render-busy-text = Im Moment werden zu viele Dokumente aufbereitet. Bitte versuchen Sie es in ein paar Sekunden erneut.
render-refused-title = Dieses Dokument kann nicht angezeigt werden
render-refused-text = Dieses Dokument kann nicht im Browser angezeigt werden: Es ist kein PDF oder Bild, das das Gateway lesen kann, oder es ist zu groß. Bitten Sie die Person, die es Ihnen gesendet hat, um ein anderes Format.
render-limit-title = Dieses Dokument kann nicht angezeigt werden
render-limit-text = Die Aufbereitung dieses Dokuments dauerte länger oder brauchte mehr Speicher als erlaubt. Bitten Sie die Person, die es Ihnen gesendet hat, um eine kleinere Fassung.
render-failed-title = Das Dokument konnte nicht aufbereitet werden
render-failed-text = Das Dokument konnte nicht abgerufen oder aufbereitet werden. Bitte versuchen Sie es in ein paar Minuten erneut.
viewer-zoom = Zoom
viewer-page = Seite { $page } von { $pages }
