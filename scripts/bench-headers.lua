-- make bench: requests with the headers a browser sends (a 450-byte head
-- instead of wrk's 50 bytes), for the row that prices them.
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
wrk.headers["Accept-Language"] = "en-US,en;q=0.9"
wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
wrk.headers["Cookie"] = "session=0123456789abcdef0123456789abcdef; theme=dark; _ga=GA1.2.1234567890.1234567890"
wrk.headers["Referer"] = "https://example.com/users/list?page=3"
