# Pages des destinataires, français (chaque message de en.ftl).

## Informations sur un document
label-document = Document
label-documents = Documents
label-size = Taille
label-type = Type
label-expires = Disponible jusqu’au
label-sender = Partagé par
label-message = Message de l’expéditeur
label-downloads-left = Téléchargements restants
no-expiry = Sans date d’expiration
several-documents = { $count } documents
file-upload = Envoi de fichiers
size-bytes = { $n ->
    [one] { $n } octet
   *[other] { $n } octets
}
unit-kib = Kio
unit-mib = Mio
unit-gib = Gio
unit-tib = Tio
local-time-note = Indiqué en UTC ; avec JavaScript, dans votre propre fuseau horaire.

## Types de fichier
type-pdf = Document PDF
type-jpeg = Image JPEG
type-png = Image PNG
type-gif = Image GIF
type-webp = Image WebP
type-svg = Image SVG
type-tiff = Image TIFF
type-image = Image
type-images = Images
type-word = Document Word
type-excel = Classeur Excel
type-powerpoint = Présentation PowerPoint
type-opendocument = Fichier OpenDocument
type-text = Fichier texte
type-csv = Tableau CSV
type-zip = Archive ZIP
type-video = Vidéo
type-audio = Fichier audio
type-file = Fichier

## Variantes d’un document
rendition-lowres = Basse résolution
rendition-hires = Haute résolution
rendition-preview = Aperçu
rendition-print = Version imprimable
rendition-web = Version web
rendition-watermarked = Avec filigrane
action-download = Télécharger
action-view = Afficher
action-download-variant = Télécharger : { $variant }
thumbnail-alt = Première page de { $name }

## Pages d’erreur
notfound-title = Ce lien ne fonctionne pas
notfound-text = Le lien est peut-être mal saisi, ou il a expiré, a été annulé ou a atteint sa limite de téléchargements.
notfound-next = Demandez un nouveau lien à la personne qui vous l’a envoyé.
status-405-title = Ce n’est pas possible ici
status-405-text = Ce lien peut seulement être ouvert ou téléchargé.
status-429-title = Trop de requêtes
status-429-text = Ce lien a été ouvert très souvent depuis votre réseau en peu de temps. Veuillez patienter une minute et réessayer.
status-502-title = Le document n’a pas pu être récupéré
status-502-text = Le stockage des documents est injoignable ou n’a pas répondu correctement. Veuillez réessayer dans quelques minutes.
status-503-title = Temporairement indisponible
status-503-text = Le service est surchargé ou en maintenance. Veuillez réessayer dans quelques minutes.
status-504-title = Le stockage des documents est trop lent
status-504-text = Le stockage des documents n’a pas répondu à temps. Veuillez réessayer dans quelques minutes.
status-other-title = Un problème est survenu
status-other-text = Votre demande n’a pas pu aboutir. Veuillez réessayer plus tard ; si cela se reproduit, prévenez la personne qui vous a envoyé le lien.
bad-request-title = La requête n’a pas pu être lue
bad-request-next = Veuillez rouvrir le lien depuis le message que vous avez reçu.
not-allowed-title = Non autorisé ici
gone-title = Le document a été modifié ou supprimé
gone-text = Ce document a été modifié ou supprimé depuis qu’il vous a été partagé. Demandez un nouveau lien à la personne qui vous l’a envoyé.
form-unreadable-title = Le formulaire n’a pas pu être lu
form-unreadable-text = Veuillez revenir en arrière, recharger la page et réessayer.
form-expired-title = Ce formulaire a expiré
form-expired-text = Les formulaires sont valables une heure. Veuillez recharger la page et réessayer.
form-spent-title = Ce formulaire a déjà été envoyé
form-spent-text = Veuillez recharger la page et réessayer.

## Mot de passe
password-title = Ce document est protégé par un mot de passe
password-label = Mot de passe
password-continue = Continuer
password-wrong = Ce mot de passe n’est pas correct. Veuillez réessayer.
password-throttled = Trop de mots de passe erronés ont été essayés depuis votre adresse réseau. Veuillez patienter 15 minutes et réessayer.
password-needs-work = Ce lien subit en ce moment de nombreuses tentatives, votre navigateur doit donc calculer quelques secondes avant la vérification du mot de passe (JavaScript est nécessaire pour l’instant). Veuillez saisir à nouveau le mot de passe.
password-bad-proof = Le formulaire n’a pas pu être vérifié. Veuillez saisir à nouveau le mot de passe.
pow-note = De nombreux mots de passe erronés ont été essayés récemment sur ce lien, votre navigateur calcule donc quelques secondes avant la vérification du mot de passe.
pow-noscript = Ce lien subit en ce moment de nombreuses tentatives. Pour l’instant, il ne s’ouvre qu’avec JavaScript activé : veuillez l’activer et recharger cette page, ou réessayer plus tard.
pow-ready = Votre navigateur est prêt.
pow-checking = Vérification de votre navigateur : cela prend quelques secondes…

## Page d’accueil
landing-one-title = Un document a été partagé avec vous
landing-many-title = Des documents ont été partagés avec vous
landing-upload-title = Envoyer des fichiers
landing-view-only = Ce navigateur peut afficher les documents. Le téléchargement nécessite un destinataire vérifié.
landing-no-documents = Il n’y a rien à télécharger sur ce lien.
upload-heading = Envoyer des fichiers
upload-drop = Déposez des fichiers ici ou choisissez-les
upload-folder = Ou choisissez un dossier entier
upload-button = Envoyer
upload-expected = Fichiers attendus : { $expected }. Encore à envoyer : { $remaining }.
upload-all-received = { $expected ->
    [one] Le fichier attendu a été reçu. Merci !
   *[other] Les { $expected } fichiers attendus ont tous été reçus. Merci !
}
upload-limit-size = Jusqu’à { $size } par fichier.
upload-limit-types = Acceptés : { $types }.
upload-limit-no-overwrite = Un fichier dont le nom est déjà pris est refusé.
upload-progress = Progression de l’envoi
upload-sending = Envoi en cours…
upload-done = Envoyé
upload-failed-file = Non envoyé
upload-complete-title = Envoi terminé
upload-partial-title = Envoi partiellement terminé
upload-failed-title = Échec de l’envoi
upload-received = Reçu :
back = Retour

## Appareils et codes
confirm-text = En l’ouvrant ici, ce navigateur devient celui qui est vérifié pour ce lien.
confirm-button = Ouvrir le document dans ce navigateur
verify-title = Vérifier ce navigateur
send-code-first = Pour ouvrir ce document, nous allons envoyer un code à 6 chiffres à { $email }.
send-code-other = Ce lien a déjà été ouvert dans un autre navigateur. Pour l’ouvrir ici, nous allons envoyer un code à 6 chiffres à { $email }.
send-code-button = M’envoyer un code
code-title = Saisissez votre code
code-sent = Un code à 6 chiffres a été envoyé à { $email }. Il fonctionne dans tout navigateur où vous ouvrez ce lien.
code-valid-until = Valable jusqu’à
code-label = Code à 6 chiffres
code-verify = Vérifier
code-no-mail = Pas de message ? Il peut mettre une minute à arriver, ou nous pouvons renvoyer le même code.
code-resend = Renvoyer le code
code-resend-throttled = Un code vient d’être envoyé. Veuillez utiliser le code de ce message, ou patienter un peu avant de redemander.
code-mail-cap = Aucun nouveau message n’a été envoyé : { $count } codes ont déjà été envoyés à { $email } au cours de la dernière heure.
code-mail-cap-current = Veuillez saisir le code du plus récent de ces messages.
code-mail-cap-later = Veuillez réessayer plus tard.
code-mail-failed = Le code n’a pas pu être envoyé pour le moment. Veuillez réessayer dans quelques minutes.
code-expired = Ce code a expiré ou a déjà été utilisé. Veuillez en demander un nouveau.
code-discarded = Trop de codes erronés ont été essayés : ce code ne fonctionne plus. Veuillez en demander un nouveau.
code-wrong = Ce code n’est pas correct. Veuillez le vérifier et réessayer.
code-too-many-title = Trop de codes erronés
code-too-many-text = Trop de codes erronés ont été essayés dans ce navigateur ou depuis votre adresse réseau. Veuillez ouvrir le lien dans un autre navigateur, ou attendre l’expiration du code (dans l’heure) et en demander un nouveau.
code-last-try-title = Ce code n’est pas correct
code-last-try-text = Ce code n’est pas correct, et il ne fonctionne plus dans ce navigateur après cinq essais. Veuillez ouvrir le lien dans un autre navigateur, ou attendre l’expiration du code (dans l’heure) et en demander un nouveau.
no-codes-title = Ce navigateur ne peut pas être vérifié
no-codes-text = Ce lien ne peut plus vérifier de nouveaux navigateurs : trop de codes erronés ont été essayés. Les navigateurs déjà vérifiés continuent de fonctionner.
ask-sender-named = Veuillez demander un nouveau lien à { $sender }.
ask-sender = Demandez un nouveau lien à la personne qui vous l’a envoyé.
recipient-browser-only = Ce lien est destiné à un destinataire précis et doit être ouvert dans un navigateur web.

## Relectures
review-closed-title = Veuillez rouvrir le lien
review-closed-text = Les vérifications de ce lien doivent être passées avant de pouvoir envoyer une relecture.
decision-recorded-title = Décision enregistrée
decision-recorded-text = Merci : votre décision a été enregistrée.
comment-sent-title = Commentaire envoyé
comment-sent-text = Merci : votre commentaire a été enregistré.
review-heading = Relecture
review-your-decision = Votre décision
review-approved = Approuvé
review-rejected = Refusé
review-comment-label = Commentaire
review-send-comment = Envoyer le commentaire
review-decision-label = Commentaire sur votre décision (facultatif)
review-final = Une décision est définitive.
review-approve = Approuver
review-reject = Refuser
review-not-granted-title = Impossible
review-not-granted-text = Ce lien ne le permet pas.
review-empty-title = Rien à envoyer
review-empty-text = Veuillez d’abord écrire un commentaire.
review-too-long-title = Commentaire trop long
review-too-long-text = Un commentaire peut compter au plus { $max } caractères.
review-too-many-title = Trop de commentaires
review-too-many-text = Aucun autre commentaire ne peut être accepté pour le moment. Veuillez réessayer plus tard.
review-decided-title = Déjà décidé
review-decided-text = Une décision a déjà été enregistrée et ne peut pas être modifiée.
upload-err-none = Aucun fichier n’a été choisi. Veuillez choisir un ou plusieurs fichiers.
upload-err-bad = L’envoi n’a pas pu être lu. Veuillez recharger la page et réessayer.
upload-err-too-large = Le fichier est plus grand que ce que ce lien accepte (au plus { $size } par fichier).
upload-err-type = Les fichiers de type { $type } ne sont pas acceptés par ce lien.
upload-err-exists = Un fichier nommé « { $name } » existe déjà. Veuillez le renommer et réessayer.
upload-err-busy = Un fichier nommé « { $name } » est en cours d’envoi. Veuillez réessayer plus tard ou le renommer.
upload-err-full = Ce lien a reçu tous les fichiers attendus ({ $expected }).
upload-err-broken = L’envoi s’est interrompu avant la fin du fichier. Veuillez réessayer.
upload-err-slow = L’envoi était trop lent et a été arrêté. Veuillez réessayer avec une connexion plus rapide.
upload-err-store = Le stockage des documents n’a pas accepté le fichier. Veuillez réessayer dans quelques minutes.
not-granted-upload = Ce lien n’accepte pas d’envoi de fichiers.
not-granted-open = Ce lien ne permet pas d’ouvrir ses documents.
not-granted-original = Ce lien ne permet pas de télécharger l’original.
not-granted-view = Ce lien ne permet pas d’afficher les documents dans le navigateur.
not-granted-rendition = Ce lien ne permet pas de télécharger cette version du document.
not-granted-next = Si vous en avez besoin, demandez-le à la personne qui vous a envoyé le lien.

## Documents préparés par la passerelle (images de pages, visionneuse, copies basse résolution)
render-busy-title = Occupé pour le moment
render-busy-text = Trop de documents sont en cours de préparation. Veuillez réessayer dans quelques secondes.
render-refused-title = Ce document ne peut pas être affiché
render-refused-text = Ce document ne peut pas être affiché dans le navigateur : ce n’est pas un PDF ou une image que la passerelle sait lire, ou il est trop volumineux. Demandez un autre format à la personne qui vous l’a envoyé.
render-limit-title = Ce document ne peut pas être affiché
render-limit-text = La préparation de ce document a pris plus de temps ou de mémoire que permis. Demandez une version plus petite à la personne qui vous l’a envoyé.
render-failed-title = Le document n’a pas pu être préparé
render-failed-text = Le document n’a pas pu être récupéré ni préparé. Veuillez réessayer dans quelques minutes.
viewer-zoom = Zoom
viewer-page = Page { $page } sur { $pages }
