// The tools today's webapp (HEAD) executes: its 62 server tools, named and
// parametrised as its catalog declares them (../shared/contract/tools-head.json
// is the fact; test/catalog.test.ts compares this table with it field by
// field). Where the executor declares less (an enum, a required flag), the
// catalog's stricter form stands: the validator enforces it. Descriptions
// are ours, in German. Data only.

import { PARAM_DESCRIPTIONS } from './param-descriptions.js';
import type { CatalogTool } from './types.js';

const RAW_TOOLS: readonly CatalogTool[] = [
  {
    name: 'create_task', module: 'todo', description: 'Legt eine Aufgabe an, auf Wunsch mit Fälligkeit und Priorität',
    params: [
      { name: 'title', type: 'string', required: true },
      { name: 'dueDate', type: 'string', required: false, format: 'date' },
      { name: 'priority', type: 'string', required: false, enum: ['low', 'medium', 'high'] },
      { name: 'description', type: 'string', required: false },
    ],
  },
  {
    name: 'complete_task', module: 'todo', description: 'Hakt eine Aufgabe ab, die über ihre ID bestimmt ist',
    params: [
      { name: 'taskId', type: 'string', required: true },
    ],
  },
  {
    name: 'complete_tasks_by_title', module: 'todo', description: 'Hakt alle offenen Aufgaben ab, deren Titel den Text enthält',
    params: [
      { name: 'titleMatch', type: 'string', required: true },
    ],
  },
  {
    name: 'create_event', module: 'calendar', description: 'Trägt einen Termin in den Standardkalender ein',
    params: [
      { name: 'title', type: 'string', required: true },
      { name: 'startTime', type: 'string', required: true, format: 'date-time' },
      { name: 'endTime', type: 'string', required: true, format: 'date-time' },
      { name: 'isAllDay', type: 'boolean', required: false },
      { name: 'location', type: 'string', required: false },
      { name: 'description', type: 'string', required: false },
    ],
  },
  {
    name: 'create_note', module: 'notes', description: 'Legt eine Notiz an',
    params: [
      { name: 'title', type: 'string', required: false },
      { name: 'content', type: 'string', required: true },
    ],
  },
  {
    name: 'update_note', module: 'notes', description: 'Ersetzt Titel und/oder Text einer bestehenden Notiz',
    params: [
      { name: 'noteId', type: 'string', required: true },
      { name: 'title', type: 'string', required: false },
      { name: 'content', type: 'string', required: false },
    ],
  },
  {
    name: 'append_to_note', module: 'notes', description: 'Hängt Text an eine bestehende Notiz an',
    params: [
      { name: 'noteId', type: 'string', required: true },
      { name: 'content', type: 'string', required: true },
    ],
  },
  {
    name: 'add_tag_to_note', module: 'notes', description: 'Versieht eine bestehende Notiz mit einem Hashtag',
    params: [
      { name: 'noteId', type: 'string', required: true },
      { name: 'tag', type: 'string', required: true },
    ],
  },
  {
    name: 'create_place', module: 'places', description: 'Speichert einen neuen Ort mit Koordinaten',
    params: [
      { name: 'name', type: 'string', required: true },
      { name: 'latitude', type: 'number', required: true },
      { name: 'longitude', type: 'number', required: true },
      { name: 'category', type: 'string', required: false, enum: ['home', 'work', 'food', 'shopping', 'sport', 'culture', 'nature', 'transport', 'health', 'education', 'nightlife', 'other'] },
      { name: 'address', type: 'string', required: false },
    ],
  },
  {
    name: 'visit_place', module: 'places', description: 'Hält einen Besuch an einem gespeicherten Ort fest',
    params: [
      { name: 'placeId', type: 'string', required: true },
    ],
  },
  {
    name: 'undo_drink', module: 'drink', description: 'Nimmt das zuletzt erfasste Getränk zurück',
    params: [],
  },
  {
    name: 'save_news_article', module: 'news', description: 'Legt den Artikel hinter einer URL auf die News-Leseliste',
    params: [
      { name: 'url', type: 'string', required: true },
      { name: 'title', type: 'string', required: false },
      { name: 'summary', type: 'string', required: false },
    ],
  },
  {
    name: 'save_article', module: 'articles', description: 'Speichert den Artikel hinter einer URL im Artikel-Modul',
    params: [
      { name: 'url', type: 'string', required: true },
      { name: 'title', type: 'string', required: false },
      { name: 'reason', type: 'string', required: false },
    ],
  },
  {
    name: 'archive_article', module: 'articles', description: 'Verschiebt einen gespeicherten Artikel ins Archiv',
    params: [
      { name: 'articleId', type: 'string', required: true },
    ],
  },
  {
    name: 'tag_article', module: 'articles', description: 'Versieht einen gespeicherten Artikel mit einem Schlagwort',
    params: [
      { name: 'articleId', type: 'string', required: true },
      { name: 'tagName', type: 'string', required: true },
    ],
  },
  {
    name: 'add_article_highlight', module: 'articles', description: 'Markiert eine wörtliche Passage in einem gespeicherten Artikel',
    params: [
      { name: 'articleId', type: 'string', required: true },
      { name: 'text', type: 'string', required: true },
      { name: 'color', type: 'string', required: false, enum: ['yellow', 'green', 'blue', 'pink'] },
      { name: 'note', type: 'string', required: false },
    ],
  },
  {
    name: 'research_news', module: 'news-research', description: 'Sucht in Feeds und im Netz nach Artikeln zu einem Thema',
    params: [
      { name: 'query', type: 'string', required: true },
      { name: 'language', type: 'string', required: false },
      { name: 'limit', type: 'number', required: false },
    ],
  },
  {
    name: 'create_journal_entry', module: 'journal', description: 'Schreibt einen Tagebucheintrag, auf Wunsch mit Stimmung',
    params: [
      { name: 'content', type: 'string', required: true },
      { name: 'title', type: 'string', required: false },
      { name: 'mood', type: 'string', required: false, enum: ['dankbar', 'glücklich', 'zufrieden', 'neutral', 'nachdenklich', 'traurig', 'gestresst', 'wütend'] },
    ],
  },
  {
    name: 'create_habit', module: 'habits', description: 'Legt eine neue Gewohnheit zum Verfolgen an',
    params: [
      { name: 'title', type: 'string', required: true },
      { name: 'icon', type: 'string', required: true },
      { name: 'color', type: 'string', required: true },
    ],
  },
  {
    name: 'log_habit', module: 'habits', description: 'Hält fest, dass eine Gewohnheit heute erledigt wurde',
    params: [
      { name: 'habitId', type: 'string', required: true },
      { name: 'note', type: 'string', required: false },
    ],
  },
  {
    name: 'create_goal', module: 'goals', description: 'Legt ein Ziel aus einer Vorlage oder aus eigenen Angaben an',
    params: [
      { name: 'templateId', type: 'string', required: false },
      { name: 'title', type: 'string', required: false },
      { name: 'description', type: 'string', required: false },
      { name: 'targetValue', type: 'number', required: false },
      { name: 'period', type: 'string', required: false, enum: ['day', 'week', 'month'] },
      { name: 'comparison', type: 'string', required: false, enum: ['gte', 'lte'] },
      { name: 'eventType', type: 'string', required: false },
      { name: 'moduleId', type: 'string', required: false },
    ],
  },
  {
    name: 'pause_goal', module: 'goals', description: 'Pausiert ein aktives Ziel',
    params: [
      { name: 'goalId', type: 'string', required: true },
    ],
  },
  {
    name: 'resume_goal', module: 'goals', description: 'Setzt ein pausiertes Ziel fort',
    params: [
      { name: 'goalId', type: 'string', required: true },
    ],
  },
  {
    name: 'complete_goal', module: 'goals', description: 'Markiert ein Ziel als erreicht',
    params: [
      { name: 'goalId', type: 'string', required: true },
    ],
  },
  {
    name: 'create_contact', module: 'contacts', description: 'Legt einen Kontakt an',
    params: [
      { name: 'firstName', type: 'string', required: true },
      { name: 'lastName', type: 'string', required: false },
      { name: 'email', type: 'string', required: false },
      { name: 'phone', type: 'string', required: false },
      { name: 'company', type: 'string', required: false },
      { name: 'notes', type: 'string', required: false },
    ],
  },
  {
    name: 'log_mood', module: 'mood', description: 'Erfasst die Stimmung mit Stärke und Hauptgefühl',
    params: [
      { name: 'level', type: 'number', required: true },
      { name: 'emotion', type: 'string', required: true, enum: ['happy', 'calm', 'energized', 'grateful', 'excited', 'loved', 'hopeful', 'neutral', 'bored', 'tired', 'sad', 'anxious', 'angry', 'stressed', 'frustrated', 'overwhelmed'] },
      { name: 'activity', type: 'string', required: false, enum: ['work', 'exercise', 'social', 'alone', 'commute', 'eating', 'resting', 'creative', 'outdoors', 'screen', 'chores', 'other'] },
      { name: 'notes', type: 'string', required: false },
    ],
  },
  {
    name: 'add_transaction', module: 'finance', description: 'Bucht eine Einnahme oder Ausgabe',
    params: [
      { name: 'type', type: 'string', required: true, enum: ['income', 'expense'] },
      { name: 'amount', type: 'number', required: true },
      { name: 'description', type: 'string', required: true },
      { name: 'date', type: 'string', required: false, format: 'date' },
    ],
  },
  {
    name: 'start_timer', module: 'times', description: 'Startet einen Zeiterfassungs-Timer',
    params: [
      { name: 'description', type: 'string', required: false },
      { name: 'projectId', type: 'string', required: false },
    ],
  },
  {
    name: 'stop_timer', module: 'times', description: 'Stoppt den laufenden Timer und speichert den Zeiteintrag',
    params: [],
  },
  {
    name: 'suggest_event', module: 'events', description: 'Schlägt ein gefundenes Ereignis zum Übernehmen vor',
    params: [
      { name: 'discovered_event_id', type: 'string', required: true },
      { name: 'reason', type: 'string', required: false },
    ],
  },
  {
    name: 'create_quiz', module: 'quiz', description: 'Legt ein leeres Quiz an',
    params: [
      { name: 'title', type: 'string', required: true },
      { name: 'description', type: 'string', required: false },
      { name: 'category', type: 'string', required: false },
    ],
  },
  {
    name: 'update_quiz', module: 'quiz', description: 'Ändert Angaben eines Quiz; nur übergebene Felder werden geschrieben',
    params: [
      { name: 'quizId', type: 'string', required: true },
      { name: 'title', type: 'string', required: false },
      { name: 'description', type: 'string', required: false },
      { name: 'category', type: 'string', required: false },
      { name: 'isPinned', type: 'boolean', required: false },
      { name: 'isArchived', type: 'boolean', required: false },
    ],
  },
  {
    name: 'add_quiz_question', module: 'quiz', description: 'Fügt einem Quiz eine Frage hinzu',
    params: [
      { name: 'quizId', type: 'string', required: true },
      { name: 'type', type: 'string', required: true, enum: ['single', 'multi', 'truefalse', 'text'] },
      { name: 'questionText', type: 'string', required: true },
      { name: 'optionsJson', type: 'string', required: true },
      { name: 'explanation', type: 'string', required: false },
    ],
  },
  {
    name: 'update_quiz_question', module: 'quiz', description: 'Ändert eine bestehende Quizfrage',
    params: [
      { name: 'questionId', type: 'string', required: true },
      { name: 'questionText', type: 'string', required: false },
      { name: 'type', type: 'string', required: false, enum: ['single', 'multi', 'truefalse', 'text'] },
      { name: 'optionsJson', type: 'string', required: false },
      { name: 'explanation', type: 'string', required: false },
    ],
  },
  {
    name: 'delete_quiz_question', module: 'quiz', description: 'Löscht eine Frage aus einem Quiz',
    params: [
      { name: 'questionId', type: 'string', required: true },
    ],
  },
  {
    name: 'create_invoice', module: 'invoices', description: 'Legt eine Rechnung als Entwurf mit Kunde und Positionen an',
    params: [
      { name: 'clientName', type: 'string', required: true },
      { name: 'clientEmail', type: 'string', required: false },
      { name: 'clientAddress', type: 'string', required: false },
      { name: 'subject', type: 'string', required: false },
      { name: 'currency', type: 'string', required: false, enum: ['CHF', 'EUR', 'USD'] },
      { name: 'dueDate', type: 'string', required: false, format: 'date' },
      { name: 'lines', type: 'array', required: true },
    ],
  },
  {
    name: 'mark_invoice_paid', module: 'invoices', description: 'Markiert eine versandte oder überfällige Rechnung als bezahlt',
    params: [
      { name: 'invoiceId', type: 'string', required: true },
      { name: 'paidAt', type: 'string', required: false, format: 'date-or-date-time' },
    ],
  },
  {
    name: 'create_library_entry', module: 'library', description: 'Nimmt ein Buch, einen Film, eine Serie oder einen Comic in die Bibliothek auf',
    params: [
      { name: 'kind', type: 'string', required: true, enum: ['book', 'movie', 'series', 'comic'] },
      { name: 'title', type: 'string', required: true },
      { name: 'creators', type: 'string', required: false },
      { name: 'year', type: 'number', required: false },
      { name: 'status', type: 'string', required: false, enum: ['planned', 'active', 'completed', 'paused', 'dropped'] },
      { name: 'rating', type: 'number', required: false },
      { name: 'tags', type: 'string', required: false },
      { name: 'genres', type: 'string', required: false },
    ],
  },
  {
    name: 'update_library_entry_status', module: 'library', description: 'Ändert den Lese- oder Schaustatus eines Bibliothekseintrags',
    params: [
      { name: 'entryId', type: 'string', required: true },
      { name: 'status', type: 'string', required: true, enum: ['planned', 'active', 'completed', 'paused', 'dropped'] },
    ],
  },
  {
    name: 'rate_library_entry', module: 'library', description: 'Bewertet einen Bibliothekseintrag',
    params: [
      { name: 'entryId', type: 'string', required: true },
      { name: 'rating', type: 'number', required: true },
    ],
  },
  {
    name: 'create_campaign_draft', module: 'broadcast', description: 'Legt einen Newsletter-Entwurf mit Betreff und HTML-Inhalt an',
    params: [
      { name: 'name', type: 'string', required: true },
      { name: 'subject', type: 'string', required: true },
      { name: 'preheader', type: 'string', required: false },
      { name: 'htmlContent', type: 'string', required: true },
    ],
  },
  {
    name: 'create_website', module: 'website', description: 'Legt eine Website mit Startseite im aktiven Bereich an',
    params: [
      { name: 'name', type: 'string', required: true },
      { name: 'slug', type: 'string', required: true },
    ],
  },
  {
    name: 'apply_website_template', module: 'website', description: 'Legt eine neue Website als Kopie einer Vorlage an',
    params: [
      { name: 'templateId', type: 'string', required: true, enum: ['portfolio', 'personal-linktree', 'event', 'blank'] },
      { name: 'name', type: 'string', required: true },
      { name: 'slug', type: 'string', required: true },
    ],
  },
  {
    name: 'create_website_page', module: 'website', description: 'Fügt einer Website eine Seite hinzu',
    params: [
      { name: 'siteId', type: 'string', required: true },
      { name: 'path', type: 'string', required: true },
      { name: 'title', type: 'string', required: true },
    ],
  },
  {
    name: 'add_website_block', module: 'website', description: 'Fügt einer Website-Seite einen Inhaltsblock hinzu',
    params: [
      { name: 'pageId', type: 'string', required: true },
      { name: 'type', type: 'string', required: true, enum: ['hero', 'richText', 'cta', 'image', 'gallery', 'faq', 'form', 'moduleEmbed', 'columns', 'spacer'] },
      { name: 'props', type: 'object', required: false },
      { name: 'parentBlockId', type: 'string', required: false },
      { name: 'slotKey', type: 'string', required: false },
    ],
  },
  {
    name: 'update_website_block', module: 'website', description: 'Ändert einzelne Eigenschaften eines Website-Blocks',
    params: [
      { name: 'blockId', type: 'string', required: true },
      { name: 'patch', type: 'object', required: true },
    ],
  },
  {
    name: 'publish_website', module: 'website', description: 'Veröffentlicht den aktuellen Entwurf einer Website',
    params: [
      { name: 'siteId', type: 'string', required: true },
    ],
  },
  {
    name: 'create_draft', module: 'writing', description: 'Legt einen Schreibentwurf aus einem Briefing an, ohne Text zu erzeugen',
    params: [
      { name: 'kind', type: 'string', required: true, enum: ['blog', 'essay', 'email', 'social', 'story', 'letter', 'speech', 'cover-letter', 'product-description', 'press-release', 'bio', 'other'] },
      { name: 'title', type: 'string', required: true },
      { name: 'topic', type: 'string', required: true },
      { name: 'audience', type: 'string', required: false },
      { name: 'tone', type: 'string', required: false },
      { name: 'language', type: 'string', required: false },
      { name: 'targetWords', type: 'number', required: false },
      { name: 'styleId', type: 'string', required: false },
      { name: 'extraInstructions', type: 'string', required: false },
    ],
  },
  {
    name: 'generate_draft_content', module: 'writing', description: 'Erzeugt eine neue Textfassung für einen Schreibentwurf',
    params: [
      { name: 'draftId', type: 'string', required: true },
    ],
  },
  {
    name: 'refine_draft_selection', module: 'writing', description: 'Überarbeitet einen Textbereich der aktuellen Fassung eines Entwurfs',
    params: [
      { name: 'draftId', type: 'string', required: true },
      { name: 'operation', type: 'string', required: true, enum: ['shorten', 'expand', 'tone', 'rewrite', 'translate'] },
      { name: 'selectionStart', type: 'number', required: true },
      { name: 'selectionEnd', type: 'number', required: true },
      { name: 'targetTone', type: 'string', required: false },
      { name: 'instruction', type: 'string', required: false },
      { name: 'targetLanguage', type: 'string', required: false },
    ],
  },
  {
    name: 'set_draft_status', module: 'writing', description: 'Setzt den Status eines Schreibentwurfs',
    params: [
      { name: 'draftId', type: 'string', required: true },
      { name: 'status', type: 'string', required: true, enum: ['draft', 'refining', 'complete', 'published'] },
    ],
  },
  {
    name: 'save_draft_as_article', module: 'writing', description: 'Veröffentlicht die aktuelle Fassung eines Entwurfs als Leseartikel',
    params: [
      { name: 'draftId', type: 'string', required: true },
    ],
  },
  {
    name: 'create_comic_story', module: 'comic', description: 'Legt eine Comic-Geschichte mit festem Zeichenstil an',
    params: [
      { name: 'title', type: 'string', required: true },
      { name: 'style', type: 'string', required: true, enum: ['comic', 'manga', 'cartoon', 'graphic-novel', 'webtoon'] },
      { name: 'description', type: 'string', required: false },
      { name: 'storyContext', type: 'string', required: false },
      { name: 'tags', type: 'string', required: false },
    ],
  },
  {
    name: 'generate_comic_panel', module: 'comic', description: 'Zeichnet ein neues Bild für eine Comic-Geschichte; kostet Credits',
    params: [
      { name: 'storyId', type: 'string', required: true },
      { name: 'panelPrompt', type: 'string', required: true },
      { name: 'caption', type: 'string', required: false },
      { name: 'dialogue', type: 'string', required: false },
      { name: 'quality', type: 'string', required: false, enum: ['low', 'medium', 'high'] },
      { name: 'model', type: 'string', required: false, enum: ['openai/gpt-image-2', 'google/gemini-3-pro-image-preview', 'google/gemini-3.1-flash-image-preview'] },
    ],
  },
  {
    name: 'create_comic_character', module: 'comic', description: 'Legt eine Comic-Figur an, noch ohne Varianten',
    params: [
      { name: 'name', type: 'string', required: true },
      { name: 'style', type: 'string', required: true, enum: ['comic', 'manga', 'cartoon', 'graphic-novel', 'webtoon'] },
      { name: 'addPrompt', type: 'string', required: false },
      { name: 'description', type: 'string', required: false },
      { name: 'tags', type: 'string', required: false },
    ],
  },
  {
    name: 'generate_character_variant', module: 'comic', description: 'Zeichnet Porträtvarianten einer Comic-Figur; kostet Credits',
    params: [
      { name: 'characterId', type: 'string', required: true },
      { name: 'count', type: 'number', required: false },
      { name: 'quality', type: 'string', required: false, enum: ['low', 'medium', 'high'] },
      { name: 'model', type: 'string', required: false, enum: ['openai/gpt-image-2', 'google/gemini-3-pro-image-preview', 'google/gemini-3.1-flash-image-preview'] },
    ],
  },
  {
    name: 'pin_character_variant', module: 'comic', description: 'Macht eine andere Variante zum festen Aussehen der Figur',
    params: [
      { name: 'characterId', type: 'string', required: true },
      { name: 'variantMediaId', type: 'string', required: true },
    ],
  },
  {
    name: 'capture_sign', module: 'augur', description: 'Hält ein Omen, eine Vorhersage oder eine Ahnung fest',
    params: [
      { name: 'kind', type: 'string', required: true, enum: ['omen', 'fortune', 'hunch'] },
      { name: 'source', type: 'string', required: true },
      { name: 'claim', type: 'string', required: true },
      { name: 'sourceCategory', type: 'string', required: false, enum: ['gut', 'tarot', 'horoscope', 'fortune-cookie', 'iching', 'dream', 'person', 'media', 'natural', 'other'] },
      { name: 'vibe', type: 'string', required: false, enum: ['good', 'bad', 'mysterious'] },
      { name: 'feltMeaning', type: 'string', required: false },
      { name: 'expectedOutcome', type: 'string', required: false },
      { name: 'expectedBy', type: 'string', required: false, format: 'date' },
      { name: 'probability', type: 'number', required: false },
      { name: 'tags', type: 'string', required: false },
    ],
  },
  {
    name: 'resolve_sign', module: 'augur', description: 'Löst ein offenes Zeichen als eingetroffen, teils oder nicht auf',
    params: [
      { name: 'entryId', type: 'string', required: true },
      { name: 'outcome', type: 'string', required: true, enum: ['fulfilled', 'partly', 'not-fulfilled'] },
      { name: 'note', type: 'string', required: false },
    ],
  },
  {
    name: 'create_last', module: 'lasts', description: 'Hält ein „letztes Mal“ fest, vermutet oder bestätigt',
    params: [
      { name: 'title', type: 'string', required: true },
      { name: 'category', type: 'string', required: false, enum: ['culinary', 'adventure', 'travel', 'people', 'career', 'creative', 'nature', 'culture', 'health', 'tech', 'other'] },
      { name: 'status', type: 'string', required: false, enum: ['suspected', 'confirmed'] },
      { name: 'date', type: 'string', required: false, format: 'date' },
      { name: 'confidence', type: 'string', required: false, enum: ['probably', 'likely', 'certain'] },
      { name: 'meaning', type: 'string', required: false },
      { name: 'note', type: 'string', required: false },
    ],
  },
  {
    name: 'confirm_last', module: 'lasts', description: 'Bestätigt ein vermutetes letztes Mal und ergänzt Gedanken dazu',
    params: [
      { name: 'lastId', type: 'string', required: true },
      { name: 'date', type: 'string', required: false, format: 'date' },
      { name: 'meaning', type: 'string', required: false },
      { name: 'whatIKnewThen', type: 'string', required: false },
      { name: 'whatIKnowNow', type: 'string', required: false },
      { name: 'tenderness', type: 'number', required: false },
      { name: 'wouldReclaim', type: 'string', required: false, enum: ['no', 'maybe', 'yes'] },
    ],
  },
  {
    name: 'reclaim_last', module: 'lasts', description: 'Markiert ein letztes Mal als zurückgewonnen, weil es wieder geschah',
    params: [
      { name: 'lastId', type: 'string', required: true },
      { name: 'reclaimedNote', type: 'string', required: false },
    ],
  },
];

/** Every parameter with its German description (param-descriptions.ts). */
export const HEAD_TOOLS: readonly CatalogTool[] = RAW_TOOLS.map((t) => ({
  ...t,
  params: t.params.map((p) => {
    const description = PARAM_DESCRIPTIONS[`${t.name}.${p.name}`];
    return description ? { ...p, description } : p;
  }),
}));
